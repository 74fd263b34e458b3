"""Real servers for the cross-backend tests: a PostgreSQL cluster and a local Spark.

PostgreSQL: Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) run a
throw-away cluster in a temporary directory, on a free loopback port, as the
unprivileged ``postgres`` user when the tests run as root (``initdb`` refuses root).
Spark: one local-mode session for the whole test session (Java from Debian).
Each fixture skips, naming what is missing, only when the binaries are truly absent;
``make test`` installs them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def postgres_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A running throw-away cluster; :meth:`database` makes an empty database."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="sawubona-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "sawubona"
        self._as: list[str] = []
        if os.geteuid() == 0:
            runner = "postgres"
            try:
                pwd.getpwnam(runner)
            except KeyError:
                runner = "nobody"
            uid = pwd.getpwnam(runner).pw_uid
            gid = pwd.getpwnam(runner).pw_gid
            os.chown(self.root, uid, gid)
            self._as = ["runuser", "-u", runner, "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "t") -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on loopback for this test session."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        )
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install 'sawubona[postgres]'")
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local-mode Spark session (2 threads) for this test session."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java not found; apt-get install openjdk-17-jre-headless")
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install 'sawubona[spark]'")
    from sawubona.backends.spark import local_session

    session = local_session("local[2]")
    try:
        yield session
    finally:
        session.stop()
