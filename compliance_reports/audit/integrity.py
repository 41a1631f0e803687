"""Audit-log integrity: recompute hashes, walk the chain, and keep signed checkpoints.

What a verification of one organization's window [start, end) does:

1. Seeds the chain with the hash of the organization's last row before ``start`` (so the
   first row of the window must link to it), then reads every row of the window once in
   (timestamp, id) order, recomputing each row's source-compatible hash
   (``hashing.row_hash``) and checking each ``prev_hash`` (``hashing.verify_chain``).
   When no row precedes the window, the first row must not point to a predecessor: if it does,
   the rows before it were deleted.
2. Takes the organization's latest checkpoint whose window ends at or before ``end`` and, when
   its HMAC signature verifies, checks that its last event still exists with the same hash and
   timestamp and that the organization still has exactly ``row_count`` rows before its
   ``window_end``. Deleting the newest rows leaves a chain that is intact but shorter; only a
   record of where the chain ended catches that. A checkpoint whose signature does not verify
   is not trusted (the verdict is BROKEN: someone altered the application database).
3. When the window verified and ``sign_checkpoint`` is set, prepares a new checkpoint for
   ``end``, signed with HMAC-SHA256 over its canonical fields (``Checkpoint.canonical_bytes``)
   using the key in ``COMPLIANCE_CHECKPOINT_KEY``; its key id is the first 8 hex digits of
   SHA-256(key). It is only stored by ``commit_checkpoint``, which the caller runs as its last
   step (a report run after its document is stored), so a run that fails writes none. A
   checkpoint is never prepared for a window that is BROKEN, INCOMPLETE, NO_DATA or not yet
   over (it would bless that state).

Verdicts: VERIFIED; BROKEN (content changed, a row missing or reordered, tail rows deleted or
altered since a checkpoint, rows inserted into a checkpointed range, a forged checkpoint);
INCOMPLETE (rows without a hash, the window has not ended, a checkpoint that cannot be checked
without the key or was signed with another key, or a checkpoint was asked for but there is no
key); NO_DATA (the organization has no row in the window: there is nothing to verify, which is
not the same as verified). BROKEN wins over INCOMPLETE, INCOMPLETE over NO_DATA.

The result carries the window's coverage (``coverage.measure_coverage``) when the caller
measured it: partial coverage and long silences are findings, not verdicts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import Connection, Engine, and_, func, insert, select

from compliance_reports.audit.coverage import Coverage, measure_coverage
from compliance_reports.audit.event_stream import (
    StreamOutcome,
    iso_micros,
    snapshot_connection,
    stream_window,
)
from compliance_reports.db.schema import audit_log, integrity_checkpoints

KEY_ENV = "COMPLIANCE_CHECKPOINT_KEY"
VERIFIED, BROKEN, INCOMPLETE, NO_DATA = "VERIFIED", "BROKEN", "INCOMPLETE", "NO_DATA"
VERDICTS = (VERIFIED, BROKEN, INCOMPLETE, NO_DATA)

BREAK_KINDS = {
    "content_changed": "content changed",
    "chain_broken": "row missing or reordered",
    "unhashed": "row has no hash",
    "head_missing": "rows before the first row were deleted",
    "tail_deleted": "tail rows deleted or altered since a checkpoint",
    "rows_inserted": "rows inserted into a checkpointed range",
    "checkpoint_forged": "checkpoint signature invalid",
}


class KeyFormatError(ValueError):
    """The key variable is set but cannot be used (not valid UTF-8)."""


def load_key(environ: Mapping[str, str] | None = None, variable: str = KEY_ENV) -> bytes | None:
    """The checkpoint signing key: the UTF-8 bytes of the variable (None when unset or empty).

    Decoded strictly: a value that is not valid UTF-8 (the environment can hold any bytes) is an
    error, never a key made of replacement characters.
    """
    value = (os.environ if environ is None else environ).get(variable)
    if not value:
        return None
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KeyFormatError(
            f"environment variable {variable} is not valid UTF-8 (at character {exc.start})"
        ) from None


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _as_event_id(value: Any) -> Any:
    """Checkpoints store event ids as text; show numeric ones as numbers, like audit_log.id."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _iso(value: datetime | None) -> str | None:
    return iso_micros(value) if value is not None else None


# ------------------------------------------------------------------------- checkpoints


@dataclass
class Checkpoint:
    organization_id: str
    window_start: datetime
    window_end: datetime
    row_count: int
    last_event_id: str | None
    last_event_timestamp: datetime | None
    last_hash: str | None
    key_id: str | None
    created_at: datetime
    signature: str = ""
    id: int | None = None

    def signed_fields(self) -> dict[str, Any]:
        return {
            "organization_id": self.organization_id,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "row_count": self.row_count,
            "last_event_id": self.last_event_id,
            "last_event_timestamp": _iso(self.last_event_timestamp),
            "last_hash": self.last_hash,
            "key_id": self.key_id,
            "created_at": _iso(self.created_at),
        }

    def canonical_bytes(self) -> bytes:
        """Signed fields as sorted-key compact JSON (timestamps ISO UTC microseconds)."""
        return json.dumps(self.signed_fields(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    def sign(self, key: bytes) -> str:
        return hmac.new(key, self.canonical_bytes(), hashlib.sha256).hexdigest()

    def signature_valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.sign(key), self.signature or "")

    def summary(self) -> dict[str, Any]:
        fields = self.signed_fields()
        del fields["organization_id"]
        return {"id": self.id, **fields}


def latest_checkpoint(app_engine: Engine, organization_id: str, at_or_before: datetime) -> Checkpoint | None:
    c = integrity_checkpoints.c
    with app_engine.connect() as conn:
        row = conn.execute(
            select(integrity_checkpoints)
            .where(and_(c.organization_id == organization_id, c.window_end <= at_or_before))
            .order_by(c.window_end.desc(), c.id.desc())
            .limit(1)
        ).mappings().first()
    if row is None:
        return None
    return Checkpoint(
        id=row["id"],
        organization_id=row["organization_id"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        row_count=row["row_count"],
        last_event_id=row["last_event_id"],
        last_event_timestamp=row["last_event_timestamp"],
        last_hash=row["last_hash"],
        key_id=row["key_id"],
        signature=row["signature"],
        created_at=row["created_at"],
    )


def store_checkpoint(app_engine: Engine, checkpoint: Checkpoint) -> int:
    values = {
        "organization_id": checkpoint.organization_id,
        "window_start": checkpoint.window_start,
        "window_end": checkpoint.window_end,
        "row_count": checkpoint.row_count,
        "last_event_id": checkpoint.last_event_id,
        "last_event_timestamp": checkpoint.last_event_timestamp,
        "last_hash": checkpoint.last_hash,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "created_at": checkpoint.created_at,
    }
    with app_engine.begin() as conn:
        result = conn.execute(insert(integrity_checkpoints).values(**values))
        checkpoint.id = result.inserted_primary_key[0]
    return checkpoint.id


# ------------------------------------------------------------------------- result


@dataclass
class Break:
    event_id: Any
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "kind": self.kind,
                "kind_title": BREAK_KINDS.get(self.kind, self.kind), "detail": self.detail}


@dataclass
class IntegrityResult:
    organization_id: str
    window_start: datetime
    window_end: datetime
    verdict: str = VERIFIED
    reason: str = ""
    rows: int = 0
    verified: int = 0
    mismatched: int = 0
    unhashed: int = 0
    chain_breaks: int = 0
    first_break: Break | None = None
    breaks: list[Break] = field(default_factory=list)          # first 100, chain order
    previous_checkpoint: dict[str, Any] | None = None           # summary + "status"
    # The checkpoint this result signs; its "id" is set once commit_checkpoint stored it.
    checkpoint_written: dict[str, Any] | None = None
    problems: list[dict[str, str]] = field(default_factory=list)  # {"level", "text"}
    notes: list[str] = field(default_factory=list)
    coverage: Coverage | None = None
    pending_checkpoint: Checkpoint | None = None                # signed, not stored yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "organization_id": self.organization_id,
            "window_start_utc": _iso(self.window_start),
            "window_end_utc": _iso(self.window_end),
            "verdict": self.verdict,
            "reason": self.reason,
            "rows": self.rows,
            "verified": self.verified,
            "mismatched": self.mismatched,
            "unhashed": self.unhashed,
            "chain_breaks": self.chain_breaks,
            "first_break": self.first_break.to_dict() if self.first_break else None,
            "breaks": [b.to_dict() for b in self.breaks],
            "previous_checkpoint": self.previous_checkpoint,
            "checkpoint_written": self.checkpoint_written,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "coverage": self.coverage.to_dict() if self.coverage is not None else None,
        }


# ------------------------------------------------------------------------- verification


@dataclass
class ChainSeed:
    event_id: Any
    timestamp: datetime
    hash: str | None


def chain_seed(conn: Connection, organization_id: str, start_utc: datetime) -> ChainSeed | None:
    """The organization's last row before the window (whose hash the first row links to)."""
    c = audit_log.c
    row = conn.execute(
        select(c.id, c.timestamp, c.hash)
        .where(and_(c.organization_id == organization_id, c.timestamp < start_utc))
        .order_by(c.timestamp.desc(), c.id.desc())
        .limit(1)
    ).first()
    return ChainSeed(row.id, row.timestamp, row.hash) if row is not None else None


def _count_before(conn: Connection, organization_id: str, end_utc: datetime) -> int:
    c = audit_log.c
    return conn.execute(
        select(func.count()).select_from(audit_log)
        .where(and_(c.organization_id == organization_id, c.timestamp < end_utc))
    ).scalar_one()


def _event_by_id(conn: Connection, organization_id: str, event_id: str | None):
    if event_id is None:
        return None
    try:
        ident = int(event_id)
    except (TypeError, ValueError):
        return None
    c = audit_log.c
    return conn.execute(
        select(c.id, c.timestamp, c.hash)
        .where(and_(c.organization_id == organization_id, c.id == ident))
    ).first()


def _check_checkpoint(
    conn: Connection, organization_id: str, checkpoint: Checkpoint, key: bytes | None,
    result: IntegrityResult,
) -> str:
    """Check a previous checkpoint; returns its status and records problems."""
    label = f"checkpoint {checkpoint.id} (window ending {_iso(checkpoint.window_end)})"
    if key is None:
        result.problems.append({"level": INCOMPLETE, "text": (
            f"{label} cannot be checked: no signing key ({KEY_ENV} is not set)")})
        return "unverifiable"
    if checkpoint.key_id != key_id(key):
        # After a key rotation: this run cannot vouch for the old checkpoint, but it may start
        # a new chain of checkpoints under the new key (see `clean` in evaluate).
        result.problems.append({"level": INCOMPLETE, "rotated_key": True, "text": (
            f"{label} was signed with key id {checkpoint.key_id}, not the current key "
            f"{key_id(key)}: it cannot be checked")})
        return "unverifiable"
    if not checkpoint.signature_valid(key):
        text = f"{label} has an invalid signature (forged or altered): it is not trusted"
        result.problems.append({"level": BROKEN, "text": text})
        result.breaks.append(Break(_as_event_id(checkpoint.last_event_id), "checkpoint_forged", text))
        return "forged"
    status = "consistent"
    if checkpoint.last_event_id is not None:
        row = _event_by_id(conn, organization_id, checkpoint.last_event_id)
        if row is None:
            detail = (f"tail rows deleted or altered since checkpoint {checkpoint.id}: its last event "
                      f"{checkpoint.last_event_id} no longer exists")
        elif row.hash != checkpoint.last_hash or row.timestamp != checkpoint.last_event_timestamp:
            detail = (f"tail rows deleted or altered since checkpoint {checkpoint.id}: its last event "
                      f"{checkpoint.last_event_id} has changed")
        else:
            detail = None
        if detail:
            result.problems.append({"level": BROKEN, "text": detail})
            result.breaks.append(Break(_as_event_id(checkpoint.last_event_id), "tail_deleted", detail))
            status = "tail_deleted"
    count = _count_before(conn, organization_id, checkpoint.window_end)
    if count != checkpoint.row_count:
        if count < checkpoint.row_count:
            kind = "tail_deleted"
            detail = (f"{checkpoint.row_count - count} row(s) before {_iso(checkpoint.window_end)} were "
                      f"deleted since checkpoint {checkpoint.id} ({checkpoint.row_count} then, {count} now)")
        else:
            kind = "rows_inserted"
            detail = (f"{count - checkpoint.row_count} row(s) were inserted before "
                      f"{_iso(checkpoint.window_end)} since checkpoint {checkpoint.id} "
                      f"({checkpoint.row_count} then, {count} now)")
        if status == "consistent" or kind == "rows_inserted":
            result.problems.append({"level": BROKEN, "text": detail})
            result.breaks.append(Break(_as_event_id(checkpoint.last_event_id), kind, detail))
        status = kind if status == "consistent" else status
    return status


def evaluate(
    conn: Connection,
    app_engine: Engine,
    organization_id: str,
    start_utc: datetime,
    end_utc: datetime,
    seed: ChainSeed | None,
    outcome: StreamOutcome,
    *,
    key: bytes | None,
    sign_checkpoint: bool,
    now: datetime,
    coverage: Coverage | None = None,
) -> IntegrityResult:
    """Turn one streaming pass (``outcome``) into a verdict; optionally prepare a signed
    checkpoint (``result.pending_checkpoint``, stored by ``commit_checkpoint``)."""
    chain = outcome.chain
    result = IntegrityResult(
        organization_id=organization_id, window_start=start_utc, window_end=end_utc,
        rows=chain.rows, verified=chain.verified, mismatched=chain.mismatched,
        unhashed=chain.unhashed, chain_breaks=chain.chain_breaks, coverage=coverage,
    )
    result.breaks = [Break(b.event_id, b.kind, b.detail) for b in chain.breaks]

    if seed is None and outcome.rows_scanned and outcome.first_row_prev_hash:
        text = ("the organization's first row points to a previous row that does not exist: "
                "rows before it were deleted")
        result.breaks.insert(0, Break(outcome.first_row_id, "head_missing", text))
        result.chain_breaks += 1
    if result.mismatched:
        result.problems.append({"level": BROKEN, "text": (
            f"{result.mismatched} row(s) changed after they were hashed (content changed)")})
    if result.chain_breaks:
        result.problems.append({"level": BROKEN, "text": (
            f"the hash chain is broken in {result.chain_breaks} place(s): rows missing or reordered")})
    if result.unhashed:
        result.problems.append({"level": INCOMPLETE, "text": f"{result.unhashed} row(s) have no hash"})
    if not outcome.rows_scanned:
        result.problems.append({"level": NO_DATA, "text": (
            "the organization has no audit rows in the window: there is nothing to verify")})

    previous = latest_checkpoint(app_engine, organization_id, end_utc)
    if previous is not None:
        status = _check_checkpoint(conn, organization_id, previous, key, result)
        result.previous_checkpoint = {**previous.summary(), "status": status}
    else:
        result.notes.append("no earlier checkpoint of this organization to compare with")

    if now < end_utc:
        result.problems.append({"level": INCOMPLETE, "text": (
            f"the window has not ended yet (it ends {_iso(end_utc)}): later rows may still arrive")})

    clean = all(p.get("rotated_key") for p in result.problems)
    if sign_checkpoint:
        if not outcome.rows_scanned:
            result.notes.append("no checkpoint written: the window has no rows to vouch for")
        elif not clean:
            result.notes.append("no checkpoint written: the window did not verify")
        elif key is None:
            result.problems.append({"level": INCOMPLETE, "text": (
                f"no signing key ({KEY_ENV} is not set), so no checkpoint was written")})
        else:
            _prepare_checkpoint(conn, organization_id, start_utc, end_utc, seed, outcome,
                                previous, key, now, result)

    levels = {p["level"] for p in result.problems}
    result.verdict = next((v for v in (BROKEN, INCOMPLETE, NO_DATA) if v in levels), VERIFIED)
    if result.verdict == VERIFIED:
        # The checkpoint compared with is bookkeeping of this run (reported apart), not the reason.
        result.reason = f"all {result.rows} row(s) in the window verified and the chain is intact"
    else:
        result.reason = "; ".join(p["text"] for p in result.problems if p["level"] == result.verdict)
    severe = [b for b in result.breaks if b.kind != "unhashed"]
    result.first_break = (severe or result.breaks or [None])[0]
    return result


def _prepare_checkpoint(conn, organization_id, start_utc, end_utc, seed, outcome,
                        previous, key, now, result) -> None:
    chain = outcome.chain
    if outcome.rows_scanned:
        last = (str(chain.last_event_id), outcome.last_row_timestamp, chain.last_hash)
    elif seed is not None:
        last = (str(seed.event_id), seed.timestamp, seed.hash)
    else:
        last = (None, None, None)
    row_count = _count_before(conn, organization_id, end_utc)
    if (
        previous is not None
        and result.previous_checkpoint
        and result.previous_checkpoint["status"] == "consistent"
        and previous.window_start == start_utc
        and previous.window_end == end_utc
        and previous.row_count == row_count
        and (previous.last_event_id, previous.last_hash) == (last[0], last[2])
    ):
        result.notes.append(f"checkpoint {previous.id} already records this window; none written")
        result.checkpoint_written = None
        return
    checkpoint = Checkpoint(
        organization_id=organization_id, window_start=start_utc, window_end=end_utc,
        row_count=row_count, last_event_id=last[0], last_event_timestamp=last[1],
        last_hash=last[2], key_id=key_id(key), created_at=now.astimezone(timezone.utc),
    )
    checkpoint.signature = checkpoint.sign(key)
    result.pending_checkpoint = checkpoint
    result.checkpoint_written = checkpoint.summary()


def commit_checkpoint(app_engine: Engine, result: IntegrityResult | None) -> int | None:
    """Store the checkpoint ``result`` signed, if any: the last step of a successful run."""
    if result is None or result.pending_checkpoint is None:
        return None
    checkpoint_id = store_checkpoint(app_engine, result.pending_checkpoint)
    result.checkpoint_written = result.pending_checkpoint.summary()
    result.pending_checkpoint = None
    return checkpoint_id


def run_pass(
    conn: Connection,
    organization_id: str,
    start_utc: datetime,
    end_utc: datetime,
    **stream_kwargs: Any,
) -> tuple[ChainSeed | None, StreamOutcome]:
    """Seed the chain and stream the window once (shared by reports and ``verify_window``)."""
    seed = chain_seed(conn, organization_id, start_utc)
    seed_hash = seed.hash if seed is not None else None
    outcome = stream_window(
        conn, organization_id, start_utc, end_utc,
        expected_prev=seed_hash, check_first_link=seed_hash is not None, **stream_kwargs,
    )
    return seed, outcome


def verify_window(
    audit_engine: Engine,
    app_engine: Engine,
    organization_id: str,
    start_utc: datetime,
    end_utc: datetime,
    *,
    key: bytes | None,
    write_checkpoint: bool,
    now: datetime | None = None,
    timezone_name: str = "UTC",
    max_silence_hours: int = 24,
) -> IntegrityResult:
    """Verify one organization's audit rows in [start_utc, end_utc) (see module docstring),
    measure the window's coverage (days and silences read in ``timezone_name``) and, when
    ``write_checkpoint`` is set and the window verified, store a signed checkpoint."""
    for name, value in (("start_utc", start_utc), ("end_utc", end_utc)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")
    if end_utc <= start_utc:
        raise ValueError("end_utc must be after start_utc")
    now = now or datetime.now(timezone.utc)
    with snapshot_connection(audit_engine) as conn:
        seed, outcome = run_pass(conn, organization_id, start_utc, end_utc)
        coverage = measure_coverage(conn, organization_id, start_utc, end_utc,
                                    timezone_name=timezone_name,
                                    max_silence_hours=max_silence_hours, now=now)
        result = evaluate(conn, app_engine, organization_id, start_utc, end_utc, seed, outcome,
                          key=key, sign_checkpoint=write_checkpoint, now=now, coverage=coverage)
    commit_checkpoint(app_engine, result)
    return result


def organization_has_rows(audit_engine: Engine, organization_id: str) -> bool:
    """Whether the organization has any audit row at all (an unknown --org is bad input)."""
    c = audit_log.c
    with audit_engine.connect() as conn:
        return conn.execute(
            select(c.id).where(c.organization_id == organization_id).limit(1)
        ).first() is not None


__all__ = [
    "BROKEN", "INCOMPLETE", "NO_DATA", "VERIFIED", "KEY_ENV", "Break", "Checkpoint",
    "IntegrityResult", "KeyFormatError", "chain_seed", "commit_checkpoint", "evaluate", "key_id",
    "latest_checkpoint", "load_key", "organization_has_rows", "run_pass", "verify_window",
]
