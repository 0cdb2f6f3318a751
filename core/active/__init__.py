"""Active learning: query strategies, scoring the pool, the bounded candidate set."""
