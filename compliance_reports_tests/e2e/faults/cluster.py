"""A PostgreSQL cluster of the test's own, on a free port, that the test stops and restarts.

Database outages are real: `pg_ctl stop -m immediate` drops every connection the way a crash
or a network cut does, and `pg_ctl start` brings the same data back. Never the shared server
on 5432. As root, initdb and postgres refuse to run, so they run as the `postgres` OS user in a
folder it owns (`runuser -u postgres --`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from compliance_reports_tests.peers import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class Cluster:
    def __init__(self) -> None:
        bin_dir = _binaries()
        if bin_dir is None:
            message = "initdb/pg_ctl not found: the database-outage tests need a PostgreSQL installation"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="cr-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N", "-E", "UTF8")
        self.start()

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bin / program), *args], check=check,
                              capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=60")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "30", "start")

    def stop(self) -> None:
        """An abrupt outage: every connection is dropped at once."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart_after(self, seconds: float) -> threading.Thread:
        """Start the server again `seconds` from now, in the background."""
        return restart_when(lambda: True, self.start, delay_s=seconds)

    def create_database(self) -> str:
        import psycopg2

        name = f"faults_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def restart_when(condition, start, *, delay_s: float = 0.0, timeout_s: float = 120.0) -> threading.Thread:
    """In the background: once `condition()` holds (polled), wait `delay_s`, then `start()`.

    Tying the end of an outage to what the code under test did (e.g. "a step asked for a
    retry") instead of to a clock keeps the test meaningful on a slow, shared machine.
    """

    def wait_then_start() -> None:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(delay_s)
        start()

    thread = threading.Thread(target=wait_then_start, daemon=True)
    thread.start()
    return thread
