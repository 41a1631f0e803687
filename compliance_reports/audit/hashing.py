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


# ------------------------------------------------------------------ columnar (Arrow batches)
#
# The same canonical string and chain walk over Arrow record batches: strings are built with
# Arrow string kernels and only the SHA-256 of each row is computed per row (hashlib). A batch
# holds the audit_log columns by name, with "timestamp" as UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ"
# (``event_stream.iso_micros``). Property tests compare both paths on random rows.

# Characters JSON escapes: quotes, backslashes, control characters. Values holding one are
# encoded by encode_basestring (C); all others only need the quotes around them.
_ESCAPED = r'["\\\x00-\x1f]'


def json_string_array(values, null_when_empty: bool = False):
    """``js_json`` of every value of a string array ("null" for nulls, and for "" when asked)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values.cast(pa.string()) if values.type != pa.string() else values
    if null_when_empty:
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    special = pc.fill_null(pc.match_substring_regex(values, _ESCAPED), False)
    if pc.any(special).as_py():
        rare = values.filter(special).to_pylist()
        quoted = pc.replace_with_mask(quoted, special, pa.array([encode_basestring(v) for v in rare],
                                                                 pa.string()))
    return pc.fill_null(quoted, "null")


def canonical_string_array(batch):
    """``canonical_string`` of every row of a batch (see the section comment for the columns)."""
    import pyarrow.compute as pc

    parts = []
    for key, column in HASHED_FIELDS:
        if key == "timestamp":
            millis = pc.utf8_slice_codeunits(batch.column(column), 0, 23)
            value = pc.fill_null(pc.binary_join_element_wise('"', millis, 'Z"', ""), "null")
        else:
            value = json_string_array(batch.column(column), key in _NULL_WHEN_EMPTY)
        parts += [("|" if parts else "") + key + ":", value]
    return pc.binary_join_element_wise(*parts, "")


def row_hash_array(batch):
    """``row_hash`` of every row of a batch, as a string array of hex digests."""
    import pyarrow as pa

    canonical = canonical_string_array(batch).cast(pa.binary())
    sha256 = hashlib.sha256
    return pa.array([sha256(b).hexdigest() for b in canonical.to_pylist()], pa.string())


class ChainWalk:
    """``verify_chain`` fed batch by batch: the same ChainReport, counted with Arrow masks.

    ``add`` takes the batch (columns id, hash, prev_hash) and its recomputed hashes, and
    returns the mask of rows whose stored hash is present and matches.
    """

    def __init__(self, expected_prev: str | None = None, check_first_link: bool = False,
                 max_breaks: int = 100) -> None:
        self.report = ChainReport()
        self._prev = expected_prev
        self._check_next = check_first_link
        self._max_breaks = max_breaks

    def add(self, batch, computed):
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        report = self.report
        if n == 0:
            return pa.array([], pa.bool_())
        stored = batch.column("hash")
        stored_prev = batch.column("prev_hash")
        hashed = pc.fill_null(pc.not_equal(stored, ""), False)
        verified = pc.and_(hashed, pc.fill_null(pc.equal(computed, stored), False))
        mismatched = pc.and_(hashed, pc.invert(verified))
        # Each row links to the previous row's hash; a row without a hash resets the link.
        link = pc.if_else(hashed, stored, pa.scalar(None, pa.string()))
        before = pa.concat_arrays([pa.array([self._prev], pa.string()), link.slice(0, n - 1)])
        linked = pc.not_equal(pc.fill_null(stored_prev, "\x00none"), before)
        broken = pc.and_(hashed, pc.fill_null(linked, False))  # null `before`: nothing to check
        if not self._check_next:
            broken = pc.and_(broken, pa.array([False] + [True] * (n - 1)))
        unhashed = pc.invert(hashed)

        counts = [pc.sum(m.cast(pa.int64())).as_py() or 0 for m in (verified, mismatched, unhashed, broken)]
        report.rows += n
        report.verified += counts[0]
        report.mismatched += counts[1]
        report.unhashed += counts[2]
        report.chain_breaks += counts[3]
        if (counts[1] or counts[2] or counts[3]) and len(report.breaks) < self._max_breaks:
            self._breaks(batch, unhashed, mismatched, broken)
        last = pc.indices_nonzero(hashed)
        if len(last):
            i = last[-1].as_py()
            report.last_hash = stored[i].as_py()
            report.last_event_id = batch.column("id")[i].as_py()
        self._prev = link[n - 1].as_py()
        self._check_next = True
        return verified

    def _breaks(self, batch, unhashed, mismatched, broken) -> None:
        import pyarrow.compute as pc

        flagged = pc.indices_nonzero(pc.or_(unhashed, pc.or_(mismatched, broken))).to_pylist()
        ids, breaks = batch.column("id"), self.report.breaks
        for i in flagged:
            event_id = ids[i].as_py()
            if unhashed[i].as_py():
                found = [ChainBreak(event_id, "unhashed", "row has no hash")]
            else:
                found = []
                if mismatched[i].as_py():
                    found.append(ChainBreak(event_id, "content_changed",
                                            "stored hash does not match the row"))
                if broken[i].as_py():
                    found.append(ChainBreak(
                        event_id, "chain_broken",
                        "prev_hash does not match the previous row: a row is missing or reordered"))
            for b in found:
                if len(breaks) < self._max_breaks:
                    breaks.append(b)
            if len(breaks) >= self._max_breaks:
                return
