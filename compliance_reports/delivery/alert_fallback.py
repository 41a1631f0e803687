"""The file that keeps alerts no channel could carry: `<data folder>/alerts.log`, JSON lines.

An alert lands here when its own destination is the failing one, when sending it failed, or
when the report names no destination that can carry alerts (and COMPLIANCE_ALERT_FALLBACK
names no destination, or the named one is failing too). Each alert is written once: the file
is locked while it is read for the alert's id and appended to, so concurrent writers (the
failure sensor, a publish run, the retry sweep) never duplicate an entry. A local append
needs no network and no database, so it works while both are down.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Mapping


def write_once(path: Path, entry: Mapping[str, Any]) -> bool:
    """Append `entry` (which has an "id") unless an entry with that id is there; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(dict(entry), sort_keys=True, ensure_ascii=False, default=str)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            for existing in handle:
                try:
                    if json.loads(existing).get("id") == entry["id"]:
                        return False
                except ValueError:
                    continue  # a line an operator edited by hand is not ours to judge
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            return True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Every entry of the file, oldest first (an absent file has none)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries
