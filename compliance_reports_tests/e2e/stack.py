"""Real processes for the end-to-end test: start them, wait for them, read their logs, stop them.

Every process gets its own session (process group) and log file, so teardown can stop a process
together with the children it spawned (the code server's API server and its run workers) by
that group's id, and a failing test can print what each process said.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

BIN = Path(sys.executable).parent  # the virtual environment's bin/ (pytest runs from it)
T = TypeVar("T")

# Variables of the calling shell that would point a process at another deployment
# (`make test` exports COMPLIANCE_DATA_DIR and DAGSTER_HOME for the demo).
_FOREIGN_PREFIXES = ("COMPLIANCE_", "DAGSTER_", "AUDIT_DB_URL", "AWS_")


def clean_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Process:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ProcessGroup:
    """The processes of one test, stopped together (newest first) by `stop_all`."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], cwd: Path) -> None:
        self.log_dir = log_dir
        self.env = dict(env)
        self.cwd = cwd
        self.processes: list[Process] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *argv: str, env: Mapping[str, str] | None = None) -> Process:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(self.env if env is None else env), cwd=self.cwd, start_new_session=True,
            )
        process = Process(name, list(argv), popen, log_path)
        self.processes.append(process)
        return process

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise AssertionError(
                    f"process {p.name} exited with status {p.popen.returncode}:\n{tail(p.log_path)}"
                )

    def stop_all(self, timeout: float = 20.0) -> None:
        running = [p for p in reversed(self.processes) if p.alive()]
        for p in running:
            _signal_group(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in each group (the process or children it spawned) is killed.
        for p in self.processes:
            _signal_group(p.popen.pid, signal.SIGKILL)
            try:
                p.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def report(self, lines: int = 80) -> str:
        parts = []
        for p in self.processes:
            state = "running" if p.alive() else f"exited {p.popen.returncode}"
            parts.append(f"----- {p.name} ({state}) {p.log_path}\n{tail(p.log_path, lines)}")
        return "\n".join(parts)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group id is the id of the process we started with start_new_session=True.
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(env: Mapping[str, str], cwd: Path, program: str, *args: str, timeout: float = 120) -> str:
    """`<venv>/bin/PROGRAM ARGS`; fails the test (with its output) when it exits non-zero."""
    argv = [str(BIN / program), *args]
    done = subprocess.run(argv, check=False, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(
            f"{program} {' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


def run_cli(env: Mapping[str, str], cwd: Path, *args: str, timeout: float = 120) -> str:
    """`compliance-reports ARGS` with the deployment's environment."""
    return run_command(env, cwd, "compliance-reports", *args, timeout=timeout)


def wait_until(
    what: str,
    probe: Callable[[], T],
    timeout: float,
    interval: float = 2.0,
    check: Callable[[], None] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        if check is not None:
            check()
        try:
            last = probe()
        except Exception as exc:  # noqa: BLE001 - a peer that is not up yet
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last probe: {last!r}")
        time.sleep(interval)


class GraphQL:
    """The webserver's GraphQL endpoint, as the UI calls it."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/graphql"

    def __call__(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.url, json={"query": query, "variables": dict(variables or {})}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]
