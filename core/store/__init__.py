"""The database: engine and sessions, the ORM schema, SQLite's write gate."""
