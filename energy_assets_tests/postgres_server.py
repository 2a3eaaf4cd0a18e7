"""A throw-away PostgreSQL cluster on 127.0.0.1: initdb in a temp folder, one server process, stopped at the end."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

# Debian's packages (`apt-get install -y postgresql`); .ci/run installs them on a fresh machine.
POSTGRES_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
# initdb and postgres refuse to run as root; as root, the cluster runs as Debian's `postgres` user.
SERVER_USER_AS_ROOT = "postgres"


@dataclass
class PostgresServer:
    """Where a running cluster listens, and the database and role the tests' Dagster instance uses."""

    host: str
    port: int
    database: str
    user: str
    password: str

    def environment(self) -> dict[str, str]:
        """The DAGSTER_POSTGRES_* variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_DB": self.database,
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
        }

    def connect(self, database: str | None = None):
        return psycopg2.connect(
            host=self.host, port=self.port, dbname=database or self.database, user=self.user, password=self.password
        )

    def query(self, sql: str, *params) -> list[tuple]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        connection.close()
        return rows


def postgres_bin_dir() -> Path | None:
    """The folder holding initdb and postgres, or None when PostgreSQL's server binaries are not installed."""
    return next((folder for folder in POSTGRES_BIN_DIRS if (folder / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER_AS_ROOT, "--", *command] if os.geteuid() == 0 else command


def _interruptible() -> None:
    # A shell that runs pytest in the background ignores SIGINT, and the server would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def running_postgres(bin_dir: Path, durable: bool = True) -> Iterator[PostgresServer]:
    """A fresh cluster with database `dagster` owned by role `dagster` (password auth), removed on exit.

    durable=False turns fsync off: faster, and a cluster thrown away at the end needs no crash safety.
    """
    # Not pytest's tmp_path: as root that is private to root, and the server user must own its folder.
    root = Path(tempfile.mkdtemp(prefix="energy_assets_pg_"))
    data_dir, password_file, log_path = root / "data", root / "password", root / "postgres.log"
    server = PostgresServer(host="127.0.0.1", port=_free_port(), database="dagster", user="dagster", password="dagster-test")
    password_file.write_text(server.password)
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER_AS_ROOT)
        for path in (root, password_file):
            os.chown(path, account.pw_uid, account.pw_gid)
    process = None
    try:
        subprocess.run(
            _as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", server.user, f"--pwfile={password_file}",
                 "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"]
            ),
            check=True,
            capture_output=True,
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _as_server_user(
                    [str(bin_dir / "postgres"), "-D", str(data_dir), "-h", server.host, "-p", str(server.port),
                     "-k", str(data_dir), *([] if durable else ["-c", "fsync=off"])]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_interruptible,
            )
        _wait_until_accepting(server, process, log_path)
        connection = server.connect(database="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {server.database} OWNER {server.user}")
        connection.close()
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away cluster for one test module; a skip naming the package when PostgreSQL is not installed."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)")
    with running_postgres(bin_dir, durable=False) as server:
        yield server


def _wait_until_accepting(server: PostgresServer, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            server.connect(database="postgres").close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.2)
    raise RuntimeError(f"postgres did not accept connections within {timeout} s:\n{log_path.read_text(errors='replace')}")


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGINT (PostgreSQL's fast shutdown) to the server's process group, SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
