"""Shared fixtures: real, migrated databases in a temporary folder, and seeded projects.

Every test gets a fresh SQLite file. A test marked `@pytest.mark.both_backends` runs twice,
`[sqlite]` and `[postgres]`: the second against a real PostgreSQL cluster that the test
session starts on a loopback port (Debian's `postgresql` package; no mock). Without
PostgreSQL the `[postgres]` runs are skipped, unless FEWLABEL_REQUIRE_POSTGRES=1 (as in CI),
which makes a missing server a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES, seed_project, tiny_backbone

from core.store.db import get_engine, session_scope, upgrade

BACKENDS = ("sqlite", "postgres")
REQUIRE_POSTGRES = os.environ.get("FEWLABEL_REQUIRE_POSTGRES") == "1"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "both_backends: run the test on SQLite and on the session's PostgreSQL "
        "(parametrizes db_url, or blank_db_url, with ids sqlite and postgres)",
    )


def pytest_generate_tests(metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_backends") is None:
        return
    name = "db_url" if "db_url" in metafunc.fixturenames else "blank_db_url"
    metafunc.parametrize(name, BACKENDS, indirect=True, ids=BACKENDS)


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be started here (not installed, no driver, no postgres user)."""


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp folder, listening on 127.0.0.1 only.

    Built for speed, not durability (fsync off): its data lives as long as the test session.
    As root the server runs as the `postgres` OS user (initdb refuses root); otherwise as us.
    """

    def __init__(self, *, durable: bool = False) -> None:
        # durable: fsync and synchronous commits on, as a production server runs (benchmarks)
        self.durable = durable
        bin_dir = self._bin_dir()
        self.initdb, self.pg_ctl = str(bin_dir / "initdb"), str(bin_dir / "pg_ctl")
        try:
            import psycopg  # noqa: F401  (the driver of the URLs this cluster hands out)
        except ImportError:
            raise PostgresUnavailable("the psycopg driver is not installed") from None
        self._as_user: list[str] | None = None
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user") from None
        self.dir = Path(tempfile.mkdtemp(prefix="fewlabel-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.port = 0
        self._names = itertools.count(1)

    @staticmethod
    def _bin_dir() -> Path:
        found = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        )
        initdb = found[-1] if found else shutil.which("initdb")
        if not initdb:
            raise PostgresUnavailable(
                "PostgreSQL is not installed (no initdb; Debian: apt-get install postgresql)"
            )
        return Path(initdb).parent

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        if self._as_user == []:  # root without runuser: su
            cmd = ["su", "postgres", "-c", shlex.join(argv)]
        else:
            cmd = [*(self._as_user or []), *argv]
        return subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        res = self._run(
            self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if res.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {res.stderr.strip()[-500:]}")
        for _ in range(5):  # a port found free may be taken before the server binds it
            self.port = _free_port()
            fast = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                f"{'' if self.durable else fast}-c max_connections=300"
            )
            res = self._run(
                self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if res.returncode == 0:
                return
        log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
        raise PostgresUnavailable(f"the server did not start: {res.stderr.strip()} {log}")

    def stop(self) -> None:
        if self.data.exists():
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        name = f"fewlabel_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        get_engine(self.url(name)).dispose()  # our pooled connections first, then the rest
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster, started on a free loopback port and stopped at the
    end; skipped where PostgreSQL is missing, a failure when FEWLABEL_REQUIRE_POSTGRES=1."""
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"FEWLABEL_REQUIRE_POSTGRES=1 but {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        cluster.stop()
        if REQUIRE_POSTGRES:
            pytest.fail(f"FEWLABEL_REQUIRE_POSTGRES=1 but {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresCluster) -> str:
    """postgresql+psycopg://postgres@127.0.0.1:PORT/DB: a database migrated to head once, the
    template each test's fresh database is copied from (tests write to their copy, db_url)."""
    name = postgres.create_database()
    url = postgres.url(name)
    upgrade(url)
    get_engine(url).dispose()  # CREATE DATABASE ... TEMPLATE needs it without connections
    return url


def _postgres_database(request, *, migrated: bool) -> Iterator[str]:
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    template = request.getfixturevalue("postgres_url").rsplit("/", 1)[1] if migrated else None
    name = cluster.create_database(template=template)
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh database built by the Alembic migrations: a SQLite file, or (parametrized
    `postgres` by @pytest.mark.both_backends) a new PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgres":
        yield from _postgres_database(request, migrated=True)
        return
    url = f"sqlite:///{tmp_path / 'fewlabel.db'}"
    upgrade(url)
    yield url


@pytest.fixture
def blank_db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database (no schema yet), for tests of the migrations themselves."""
    if getattr(request, "param", "sqlite") == "postgres":
        yield from _postgres_database(request, migrated=False)
        return
    yield f"sqlite:///{tmp_path / 'm.db'}"


@pytest.fixture
def session(db_url):
    """A session in one transaction, committed at the end of the test."""
    with session_scope(db_url) as s:
        yield s


@pytest.fixture
def make_project(db_url) -> Callable[..., list[int]]:
    """seed_project bound to the test's database: make_project(name, texts, task=...)."""

    def make(name: str, texts: Sequence[str], **kwargs) -> list[int]:
        return seed_project(db_url, name, texts, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Streamlit's script runner (AppTest) makes the app script `sys.modules["__main__"]` and
    leaves it there; a later test's spawned process would then run app/main.py as its main
    (migrating a database on import, six at once). Each test starts with pytest's own."""
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny randomly initialised BERT with a vocabulary for the helpers' sentences."""
    words = " ".join(ACRONYM_SENTENCES + POOL_SENTENCES).split()
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", words)
