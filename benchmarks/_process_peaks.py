"""Run a child process to completion and measure its peak RSS and that of every process it
starts, each its own.

`getrusage`'s `ru_maxrss` (of the child, or RUSAGE_CHILDREN) keeps the RSS the parent had when
the child was forked: a child of a benchmark that seeded a million events in-process reports
at least what the benchmark held. `/proc/<pid>/status`'s VmHWM is the high-water mark of the
process image alone, so a sampler thread reads it for the child and each of its descendants
every 50 ms while they live; the last value read of each process is its peak up to 50 ms
before it ended.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass
class Measured:
    seconds: float
    stdout: str
    peak_mb: float                                    # the child's own VmHWM
    descendants: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (command, MB)

    @property
    def largest_descendant(self) -> tuple[str, float]:
        return max(self.descendants.values(), key=lambda v: v[1], default=("", 0.0))

    @property
    def peak_any_mb(self) -> float:
        return max(self.peak_mb, self.largest_descendant[1])


def _children() -> dict[int, list[int]]:
    by_parent: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, the last ')' ends it
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        by_parent.setdefault(ppid, []).append(int(entry.name))
    return by_parent


def _hwm_mb(pid: int) -> float | None:
    try:
        with open(PROC / str(pid) / "status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _command(pid: int) -> str:
    try:
        parts = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = " ".join(p.decode(errors="replace") for p in parts[:3]).split()
    return " ".join(words)[:60]


def run(args: list[str], env: dict[str, str], interval: float = 0.05) -> Measured:
    """Run `args` to completion; raise SystemExit with its output when it fails."""
    peaks: dict[int, tuple[str, float]] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                tree, todo = [], [proc.pid]
                by_parent = _children()
                while todo:
                    pid = todo.pop()
                    tree.append(pid)
                    todo += by_parent.get(pid, [])
                for pid in tree:
                    hwm = _hwm_mb(pid)
                    if hwm is not None:
                        command = peaks[pid][0] if pid in peaks else _command(pid)
                        peaks[pid] = (command, max(hwm, peaks.get(pid, ("", 0.0))[1]))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if code != 0:
            raise SystemExit(f"{' '.join(args[:3])} failed ({code}):\n{text}\n{err.read().decode()[-3000:]}")
    own = peaks.pop(proc.pid, ("", 0.0))[1]
    return Measured(seconds, text, own, peaks)
