"""Source-compatible audit row hashes and the per-organization hash chain.

The original TypeScript system hashed a fixed set of fields; rows it wrote must still verify,
so the canonical string is reproduced exactly: `key:<JSON value>` pairs, keys sorted, joined
with `|`, JSON as JavaScript's JSON.stringify writes it (no spaces, non-ASCII kept).
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

HASH_ALGORITHM = "SHA-256"

# source key -> audit_log column; sorted by source key, which is the hashing order.
HASHED_FIELDS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            "action": "action",
            "organizationId": "organization_id",
            "outcomeDescription": "outcome_description",
            "principalId": "principal_id",
            "status": "status",
            "targetResourceId": "target_resource_id",
            "targetResourceType": "target_resource_type",
            "timestamp": "timestamp",
        }.items()
    )
)
# Fields the source system wrote as null when missing or empty.
_NULL_WHEN_EMPTY = {
    "principalId", "organizationId", "targetResourceType", "targetResourceId", "outcomeDescription",
}


def iso_millis(ts: datetime) -> str:
    """`2026-11-27T09:15:02.123Z`: JavaScript's Date.toISOString (milliseconds truncated)."""
    if ts.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def js_json(value: object) -> str:
    # The hot path of every integrity pass: strings and nulls skip the generic encoder.
    if value is None:
        return "null"
    if type(value) is str:
        return encode_basestring(value)
    return _ENCODE(value)


def canonical_string(row: Mapping[str, object]) -> str:
    parts = []
    for key, column in HASHED_FIELDS:
        value = row.get(column)
        if key == "timestamp":
            value = iso_millis(value) if isinstance(value, datetime) else value
        elif key in _NULL_WHEN_EMPTY and (value is None or value == ""):
            value = None
        parts.append(f"{key}:{js_json(value)}")
    return "|".join(parts)


def row_hash(row: Mapping[str, object]) -> str:
    """SHA-256 hex of the canonical string of an audit row (column names as in audit_log)."""
    return hashlib.sha256(canonical_string(row).encode("utf-8")).hexdigest()


@dataclass
class ChainBreak:
    event_id: object
    kind: str  # content_changed | chain_broken | unhashed
    detail: str


@dataclass
class ChainReport:
    """Result of walking one organization's rows in (timestamp, id) order."""

    rows: int = 0
    verified: int = 0
    mismatched: int = 0
    unhashed: int = 0
    chain_breaks: int = 0
    last_hash: str | None = None
    last_event_id: object = None
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatched == 0 and self.chain_breaks == 0 and self.unhashed == 0

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


def verify_chain(
    rows: Iterable[Mapping[str, object]],
    expected_prev: str | None = None,
    check_first_link: bool = False,
    max_breaks: int = 100,
) -> ChainReport:
    """Recompute each row's hash and check each prev_hash against the previous row.

    `rows` must be one organization's rows in (timestamp, id) order. When the walk starts in
    the middle of the chain, pass the hash of the row before it as `expected_prev` and set
    `check_first_link`; otherwise the first row's prev_hash is taken as given.
    """
    report = ChainReport()
    prev = expected_prev
    first = True
    for row in rows:
        report.rows += 1
        stored = row.get("hash")
        if not stored:
            report.unhashed += 1
            if len(report.breaks) < max_breaks:
                report.breaks.append(ChainBreak(row.get("id"), "unhashed", "row has no hash"))
            prev = None
            first = False
            continue
        if row_hash(row) == stored:
            report.verified += 1
        else:
            report.mismatched += 1
            if len(report.breaks) < max_breaks:
                report.breaks.append(
                    ChainBreak(row.get("id"), "content_changed", "stored hash does not match the row")
                )
        if (not first or check_first_link) and prev is not None and row.get("prev_hash") != prev:
            report.chain_breaks += 1
            if len(report.breaks) < max_breaks:
                report.breaks.append(
                    ChainBreak(
                        row.get("id"),
                        "chain_broken",
                        "prev_hash does not match the previous row: a row is missing or reordered",
                    )
                )
        prev = stored
        first = False
        report.last_hash = stored
        report.last_event_id = row.get("id")
    return report
