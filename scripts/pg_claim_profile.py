"""One annotator's next+save loop on a throwaway PostgreSQL: time per statement, and the
claim query's plan, with or without planner statistics.

    python scripts/pg_claim_profile.py [--texts 20000] [--loops 200] [--no-analyze]

Starts a cluster from the tests' PostgresCluster (Debian's postgresql, loopback only),
imports `--texts` one-line texts into a fresh acronym project, runs the loop and prints
milliseconds per statement kind and `EXPLAIN ANALYZE` of the claim. `--no-analyze` throws
away the statistics the import gathered (core.store.db.refresh_statistics), as it was before
f188731: the loop took 217 ms a text then, 9 ms with statistics.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CLAIM_PLAN = """EXPLAIN (ANALYZE, BUFFERS)
SELECT documents.id FROM documents
WHERE documents.project_id = :project AND documents.state = 'open'
  AND (documents.assigned_to IS NULL OR documents.assigned_at < now() - interval '30 min')
  AND NOT EXISTS (SELECT 1 FROM annotations
                  WHERE annotations.document_id = documents.id AND annotations.annotator = :who)
ORDER BY documents.rank, documents.id LIMIT 1 FOR UPDATE SKIP LOCKED"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=20000)
    ap.add_argument("--loops", type=int, default=200)
    ap.add_argument("--no-analyze", action="store_true", help="drop the import's statistics")
    args = ap.parse_args()

    from conftest import PostgresCluster
    from sqlalchemy import event, text

    from core.io.imports import import_bytes
    from core.labeling.annotations import next_document, save
    from core.labeling.projects import create_project
    from core.store.db import ensure_schema, get_engine, session_scope
    from core.store.schema import Project

    cluster = PostgresCluster()
    cluster.start()
    try:
        url = cluster.url(cluster.create_database())
        ensure_schema(url)
        lines = "\n".join(f"Open text {i} : the NASA report ." for i in range(args.texts))
        with session_scope(url) as s:
            project = create_project(s, "profile", "acronym")
            pid = project.id
            import_bytes(s, project, "t.txt", lines.encode())
        engine = get_engine(url)
        if args.no_analyze:  # as a fresh table looked to the planner before f188731
            with engine.begin() as conn:
                for table in ("documents", "annotations"):
                    conn.execute(
                        text(f"DELETE FROM pg_statistic WHERE starelid = '{table}'::regclass")
                    )
                    conn.execute(
                        text(
                            "UPDATE pg_class SET reltuples = -1, relpages = 0 "
                            f"WHERE relname = '{table}'"
                        )
                    )

        total: dict[str, float] = collections.defaultdict(float)
        count: collections.Counter = collections.Counter()
        started: dict[int, float] = {}

        def before(conn, cursor, statement, *a):
            started[id(conn)] = time.perf_counter()

        def after(conn, cursor, statement, *a):
            key = " ".join(statement.split())[:60]
            total[key] += time.perf_counter() - started[id(conn)]
            count[key] += 1

        def loop(n: int, who: str = "ann") -> None:
            for _ in range(n):
                with session_scope(url) as s:
                    task = next_document(s, s.get(Project, pid), who)
                    word, doc_id = task.words[0], task.document_id
                with session_scope(url) as s:
                    span = {"start": word.start, "end": word.end, "label": "SHORT"}
                    save(s, s.get(Project, pid), doc_id, who, [span])

        loop(20)  # warm caches and prepared statements
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        cpu, wall = time.process_time(), time.perf_counter()
        loop(args.loops)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"next+save: {wall / args.loops * 1000:.1f} ms a text, "
              f"{cpu / args.loops * 1000:.1f} ms of it client CPU")  # fmt: skip
        for key in sorted(total, key=total.get, reverse=True):
            print(f"{total[key] / count[key] * 1000:8.2f} ms x{count[key]:<5} {key}")
        with engine.connect() as conn:
            for (line,) in conn.execute(text(CLAIM_PLAN), {"project": pid, "who": "ann"}):
                print(line)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
