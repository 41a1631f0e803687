"""One streaming pass over a window's audit rows: event digest, Parquet export, hash chain.

Nothing here holds the period in memory. Rows arrive in (timestamp, id) order as Arrow record
batches (``extract.window_batches``: COPY into Arrow on PostgreSQL, cursor chunks elsewhere), and
each batch is hashed, checked, digested and, when asked, appended to a Parquet file before the
next one is read, with Arrow string kernels rather than a Python object per row.

The pass reads EVERY row of the organization in the window (the hash chain needs them all);
whether a row matches the report's criteria is decided by SQL (a ``CASE`` column computed from
the criteria with bound parameters) except ``verified_only``, which is decided here, in Python,
because only Python can recompute the source-compatible hash.

Canonical event row (what ``events_sha256`` covers)
----------------------------------------------------
For each event that matches the criteria, in (timestamp, id) order, the *exported record* is:

    id                    integer
    timestamp             "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds, always 6 digits)
    organization_id       string
    principal_id          string or null          (pseudonym when redacted, see below)
    action                string
    target_resource_type  string or null
    target_resource_id    string or null          (pseudonym when redacted)
    status                string
    outcome_description   string or null
    data_classification   string or null
    correlation_id        string or null
    hash                  string or null          (as stored)
    prev_hash             string or null          (as stored)
    details               string or null: the details JSON re-serialised with sorted keys,
                          separators "," and ":", non-ASCII kept (null when redacted)

Its canonical bytes are ``json.dumps(record, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8 followed by one ``\\n``. ``events_sha256`` is the SHA-256
of the concatenation of those lines (so an empty window gives the SHA-256 of the empty string).
The Parquet file holds exactly these records (timestamp typed as timestamp[us, tz=UTC]), so
``digest_parquet`` recomputes the same value from the file.

Redaction (``export.redact_identifiers``)
-----------------------------------------
principal_id and target_resource_id are replaced by ``anon:<16 hex>``: the first 16 hex digits
of HMAC-SHA256(key, value) with the checkpoint signing key (COMPLIANCE_CHECKPOINT_KEY), so the
same value always gets the same pseudonym and nobody without the key can reverse it by trying
candidate ids. There is no unkeyed fallback: without the key redaction is refused (at apply, and
by ``Redactor`` at run time). ``details`` is dropped (null) because it may hold any identifier
(patient ids, IP addresses, data-subject ids) that cannot be pseudonymised reliably. The digest
is computed over the records as exported (redacted when redaction is on), so a recipient can
recompute it from the file. The report builders show the same pseudonyms for principal,
resource and patient identifiers in the report document (``ReportContext.pseudo``).

Performance: ``canonical_line_array`` builds every canonical line of a batch with Arrow
string kernels (property tests check it against ``canonical_line``, which spells the sorted
record out, and that against ``canonical_line_reference``); the digest reads the lines' bytes
straight from the Arrow buffer. The per-row Python work left is the SHA-256 of each row hash
(``hashing.row_hash_array``), re-serialising ``details`` to its canonical JSON, and encoding the
rare values that hold quotes, backslashes or control characters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from compliance_reports.audit.extract import WINDOW_COLUMNS, window_batches
from compliance_reports.audit.hashing import ChainReport, ChainWalk, json_string_array, row_hash_array

DEFAULT_BATCH_SIZE = 5000

EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "timestamp",
    "organization_id",
    "principal_id",
    "action",
    "target_resource_type",
    "target_resource_id",
    "status",
    "outcome_description",
    "data_classification",
    "correlation_id",
    "hash",
    "prev_hash",
    "details",
)
REDACTED_COLUMNS = ("principal_id", "target_resource_id")
# The pass reads the export columns (the hashed fields are among them) and the criteria flag.
assert WINDOW_COLUMNS == (*EXPORT_COLUMNS, "in_criteria"), "extract reads the exported columns"


def iso_micros(ts: datetime) -> str:
    """`2026-11-27T09:15:02.123000Z`: UTC, microseconds, always six digits."""
    if ts.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    if ts.tzinfo is not timezone.utc:
        ts = ts.astimezone(timezone.utc)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_DETAILS_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_details(details: Any) -> str | None:
    """The details JSON with sorted keys, compact separators, non-ASCII kept (or None)."""
    if details is None:
        return None
    if isinstance(details, str):  # a driver that hands back JSON text
        details = json.loads(details)
    return _DETAILS_ENCODER.encode(details)


class RedactionKeyError(ValueError):
    """Redaction was asked for without a key; an unkeyed hash of an id can be reversed."""


class Redactor:
    """Stable keyed pseudonyms for identifiers in exported rows (see module docstring)."""

    method = "HMAC-SHA256 (keyed)"

    def __init__(self, key: bytes | None) -> None:
        if not key:
            raise RedactionKeyError(
                "export.redact_identifiers needs the checkpoint key (COMPLIANCE_CHECKPOINT_KEY): "
                "pseudonyms are HMAC-SHA256 of the identifier with that key"
            )
        self.key = key
        self._cache: dict[str, str] = {}

    def pseudonym(self, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            value = str(value)
        cached = self._cache.get(value)
        if cached is None:
            digest = hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()
            cached = "anon:" + digest[:16]
            if len(self._cache) < 100_000:
                self._cache[value] = cached
        return cached


def export_record(row: Mapping[str, Any], redactor: Redactor | None = None) -> dict[str, Any]:
    """The exported record of one audit row (module docstring), timestamp still a datetime."""
    record = {name: row.get(name) for name in EXPORT_COLUMNS}
    record["details"] = canonical_details(record["details"])
    if redactor is not None:
        for name in REDACTED_COLUMNS:
            record[name] = redactor.pseudonym(record[name])
        record["details"] = None
    return record


def canonical_line_reference(record: Mapping[str, Any]) -> bytes:
    """The definition of a canonical line (``canonical_line`` is a faster equivalent)."""
    data = dict(record)
    ts = data["timestamp"]
    if isinstance(ts, datetime):
        data["timestamp"] = iso_micros(ts)
    return (
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode("utf-8")


_SORTED_COLUMNS = tuple(sorted(EXPORT_COLUMNS))
assert _SORTED_COLUMNS == (
    "action", "correlation_id", "data_classification", "details", "hash", "id", "organization_id",
    "outcome_description", "prev_hash", "principal_id", "status", "target_resource_id",
    "target_resource_type", "timestamp",
), "canonical_line spells the sorted columns out: update it with EXPORT_COLUMNS"


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def canonical_line(record: Mapping[str, Any]) -> bytes:
    """Canonical bytes of one exported record: the same output as ``canonical_line_reference``
    for records with exactly the EXPORT_COLUMNS keys (tested), without a generic JSON encoder."""
    if len(record) != len(_SORTED_COLUMNS):
        return canonical_line_reference(record)
    j = _json_value
    ts = record["timestamp"]
    if isinstance(ts, datetime):
        ts = iso_micros(ts)
    return (
        f'{{"action":{j(record["action"])},"correlation_id":{j(record["correlation_id"])},'
        f'"data_classification":{j(record["data_classification"])},"details":{j(record["details"])},'
        f'"hash":{j(record["hash"])},"id":{j(record["id"])},'
        f'"organization_id":{j(record["organization_id"])},'
        f'"outcome_description":{j(record["outcome_description"])},'
        f'"prev_hash":{j(record["prev_hash"])},"principal_id":{j(record["principal_id"])},'
        f'"status":{j(record["status"])},"target_resource_id":{j(record["target_resource_id"])},'
        f'"target_resource_type":{j(record["target_resource_type"])},"timestamp":{j(ts)}}}\n'
    ).encode("utf-8")


def events_digest(records) -> str:
    """SHA-256 of the canonical lines of exported records, in the order given."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(canonical_line(record))
    return digest.hexdigest()


# ------------------------------------------------------------------------- Parquet


def parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
            ("organization_id", pa.string()),
            ("principal_id", pa.string()),
            ("action", pa.string()),
            ("target_resource_type", pa.string()),
            ("target_resource_id", pa.string()),
            ("status", pa.string()),
            ("outcome_description", pa.string()),
            ("data_classification", pa.string()),
            ("correlation_id", pa.string()),
            ("hash", pa.string()),
            ("prev_hash", pa.string()),
            ("details", pa.string()),
        ]
    )


class ParquetEventWriter:
    """Appends exported records to a Parquet file: whole Arrow batches (``write_batch``, one row
    group each) or records one at a time (``add``, a row group per ``batch_size`` records)."""

    def __init__(self, path: Path, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = parquet_schema()
        self.batch_size = batch_size
        self._columns: dict[str, list] = {name: [] for name in EXPORT_COLUMNS}
        self._pending = 0
        self._writer = pq.ParquetWriter(str(self.path), self.schema, compression="zstd")

    def add(self, record: Mapping[str, Any]) -> None:
        for name in EXPORT_COLUMNS:
            self._columns[name].append(record[name])
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def write_batch(self, batch) -> None:
        self.flush()
        if batch.num_rows:
            self._writer.write_batch(batch)

    def flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        arrays = [pa.array(self._columns[f.name], type=f.type) for f in self.schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self._columns = {name: [] for name in EXPORT_COLUMNS}
        self._pending = 0

    def close(self) -> None:
        self.flush()
        self._writer.close()


def iter_parquet_records(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(str(path))
    for batch in parquet.iter_batches(batch_size=DEFAULT_BATCH_SIZE):
        yield from batch.to_pylist()


def digest_parquet(path: Path) -> str:
    """Recompute ``events_sha256`` from an exported Parquet file."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    parquet = pq.ParquetFile(str(path))
    for batch in parquet.iter_batches(batch_size=50_000, columns=list(EXPORT_COLUMNS)):
        columns = {name: batch.column(name) for name in EXPORT_COLUMNS}
        columns["timestamp"] = pc.strftime(columns["timestamp"], format="%Y-%m-%dT%H:%M:%SZ")
        digest.update(_string_data(canonical_line_array(columns)))
    return digest.hexdigest()


# ------------------------------------------------------------------------- columnar records

_LINE_KEYS = (  # EXPORT_COLUMNS sorted, as canonical_line spells them
    "action", "correlation_id", "data_classification", "details", "hash", "id", "organization_id",
    "outcome_description", "prev_hash", "principal_id", "status", "target_resource_id",
    "target_resource_type", "timestamp",
)
assert _LINE_KEYS == _SORTED_COLUMNS


def canonical_line_array(columns: Mapping[str, Any], encoded: Mapping[str, Any] | None = None):
    """``canonical_line`` of every record held column-wise (Arrow arrays by EXPORT_COLUMNS name,
    "timestamp" as the ``iso_micros`` text), as one string array; its concatenated bytes are
    what ``events_sha256`` hashes. ``encoded`` may hold columns already JSON-encoded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ready = encoded or {}
    parts: list[Any] = []
    for key in _LINE_KEYS:
        values = columns[key]
        if key in ready:
            value = ready[key]
        elif key == "id":
            value = pc.fill_null(pc.cast(values, pa.string()), "null")
        else:
            value = json_string_array(values)
        parts += [("{" if not parts else ",") + f'"{key}":', value]
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def _string_data(array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array without nulls (no copy)."""
    if len(array) == 0:
        return memoryview(b"")
    _validity, offsets, data = array.buffers()
    offsets = memoryview(offsets).cast("i")
    return memoryview(data)[offsets[array.offset]:offsets[array.offset + len(array)]]


def _details_codec():
    """(parse, encode) of ``canonical_details`` for JSON text: the C scanner and the C encoder
    of the json module called directly. ``json.loads`` and ``JSONEncoder.encode`` wrap them in
    four Python calls per value and build a new encoder each time: a third of the per-row
    cost of the details, which are a third of the stream pass."""
    from json.encoder import c_make_encoder
    from json.scanner import c_make_scanner

    loads = json.loads
    if c_make_scanner is None or c_make_encoder is None:  # pragma: no cover - no C accelerator
        return loads, _DETAILS_ENCODER.encode
    scan = c_make_scanner(json.JSONDecoder())

    def not_json(value):  # pragma: no cover - parsed JSON holds only JSON types
        raise TypeError(f"not JSON: {type(value).__name__}")

    # markers, default, encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan:
    # what _DETAILS_ENCODER uses (no circular check: parsed JSON cannot be circular).
    c_encode = c_make_encoder(None, not_json, encode_basestring, None, ":", ",", True, False, True)

    def parse(text: str):
        try:
            value, end = scan(text, 0)
        except StopIteration:  # leading whitespace, or not JSON: json.loads decides
            return loads(text)
        return value if end == len(text) else loads(text)

    return parse, lambda value: "".join(c_encode(value, 0))


_PARSE_DETAILS, _ENCODE_DETAILS = _details_codec()


def _canonical_details_arrays(values):
    """(canonical details, the same JSON-encoded as a string for the canonical line)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parse, encode = _PARSE_DETAILS, _ENCODE_DETAILS

    def canonical_text(text: str | None) -> str | None:
        if text is None:
            return None
        value = parse(text)
        # JSON null (what SQLAlchemy's JSON type stores for None) reads back as None, as
        # through the driver: the record's details are null, not the string "null".
        return None if value is None else encode(value)

    canonical = pa.array([canonical_text(v) for v in values.to_pylist()], pa.string())
    # Canonical JSON holds no raw control character (the encoder escapes them), so quoting it
    # as a JSON string (what encode_basestring does) only escapes backslashes and quotes.
    escaped = pc.replace_substring(pc.replace_substring(canonical, "\\", "\\\\"), '"', '\\"')
    return canonical, pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")


def _pseudonym_array(values, redactor: Redactor):
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    names = pa.array([redactor.pseudonym(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(names, encoded.indices)


def _export_columns(selected, redactor: Redactor | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The exported records of a window batch (``extract.WINDOW_COLUMNS``), column-wise, and
    the columns already JSON-encoded for ``canonical_line_array``."""
    import pyarrow as pa

    columns = {name: selected.column(name) for name in EXPORT_COLUMNS}
    encoded: dict[str, Any] = {}
    if redactor is not None:
        for name in REDACTED_COLUMNS:
            columns[name] = _pseudonym_array(columns[name], redactor)
        columns["details"] = pa.nulls(selected.num_rows, pa.string())
    else:
        columns["details"], encoded["details"] = _canonical_details_arrays(columns["details"])
    return columns, encoded


def _records_batch(columns: Mapping[str, Any]):
    import pyarrow as pa

    schema = parquet_schema()
    arrays = [columns[f.name].cast(f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _count(mask) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.sum(mask.cast(pa.int64())).as_py() or 0


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------- the pass


@dataclass
class StreamOutcome:
    """What one pass over the window produced."""

    event_count: int = 0              # rows matching the criteria (after verified_only)
    events_sha256: str = hashlib.sha256(b"").hexdigest()
    events_path: Path | None = None
    rows_scanned: int = 0             # every row of the organization in the window
    excluded_unverified: int = 0      # rows matching the SQL criteria dropped by verified_only
    chain: ChainReport = field(default_factory=ChainReport)
    first_row_id: Any = None
    first_row_prev_hash: str | None = None
    last_row_timestamp: datetime | None = None
    # Rows whose stored hash does not verify (up to max_tracked_ids), so SQL aggregates can
    # exclude them for verified_only; `unverified_ids_complete` says the list is whole.
    unverified_ids: list[Any] = field(default_factory=list)
    unverified_ids_complete: bool = True
    sample: list[dict[str, Any]] = field(default_factory=list)  # first N matching records
    # The distinct non-null actions of every row scanned, so the report's statements can
    # resolve the action categories without reading the window again.
    actions: set[str] = field(default_factory=set)


def stream_window(
    conn: Connection,
    organization_id: str,
    start_utc: datetime,
    end_utc: datetime,
    *,
    criteria_condition: ColumnElement | None = None,
    verified_only: bool = False,
    expected_prev: str | None = None,
    check_first_link: bool = False,
    events_path: Path | None = None,
    redactor: Redactor | None = None,
    sample_limit: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tracked_ids: int = 5000,
) -> StreamOutcome:
    """Read the window once: chain check over all rows, digest/export over matching rows."""
    import pyarrow.compute as pc

    outcome = StreamOutcome(events_path=events_path)
    digest = hashlib.sha256()
    writer = ParquetEventWriter(events_path, batch_size) if events_path is not None else None
    walk = ChainWalk(expected_prev=expected_prev, check_first_link=check_first_link)
    last_timestamp = None
    try:
        for batch in window_batches(conn, organization_id, start_utc, end_utc,
                                    criteria_condition, batch_rows=batch_size):
            n = batch.num_rows
            if n == 0:
                continue
            if outcome.rows_scanned == 0:
                outcome.first_row_id = batch.column("id")[0].as_py()
                outcome.first_row_prev_hash = batch.column("prev_hash")[0].as_py()
            outcome.rows_scanned += n
            last_timestamp = batch.column("timestamp")[n - 1].as_py()
            outcome.actions.update(a for a in pc.unique(batch.column("action")).to_pylist() if a is not None)
            verified = walk.add(batch, row_hash_array(batch))
            keep = pc.equal(batch.column("in_criteria"), 1)
            if verified_only:
                hashed = pc.fill_null(pc.not_equal(batch.column("hash"), ""), False)
                mismatched = pc.and_(hashed, pc.invert(verified))
                if _count(mismatched):
                    ids = batch.column("id").filter(mismatched).to_pylist()
                    room = max(0, max_tracked_ids - len(outcome.unverified_ids))
                    outcome.unverified_ids += ids[:room]
                    if len(ids) > room:
                        outcome.unverified_ids_complete = False
                matching = _count(keep)
                keep = pc.and_(keep, verified)
                outcome.excluded_unverified += matching - _count(keep)
            selected = batch.filter(keep)
            if selected.num_rows == 0:
                continue
            columns, encoded = _export_columns(selected, redactor)
            digest.update(_string_data(canonical_line_array(columns, encoded)))
            outcome.event_count += selected.num_rows
            records = None
            if writer is not None:
                records = _records_batch(columns)
                writer.write_batch(records)
            if len(outcome.sample) < sample_limit:
                records = records if records is not None else _records_batch(columns)
                for record in records.slice(0, sample_limit - len(outcome.sample)).to_pylist():
                    record["timestamp"] = record["timestamp"].replace(tzinfo=timezone.utc)
                    outcome.sample.append(record)
    except BaseException:
        if writer is not None:
            writer.close()
            Path(events_path).unlink(missing_ok=True)  # never leave a half-written export
        raise
    if writer is not None:
        writer.close()
    outcome.chain = walk.report
    outcome.last_row_timestamp = _utc(last_timestamp) if last_timestamp is not None else None
    outcome.events_sha256 = digest.hexdigest()
    return outcome


@contextmanager
def snapshot_connection(engine: Engine) -> Iterator[Connection]:
    """A read connection whose statements see one snapshot where the backend allows it.

    On PostgreSQL the transaction is REPEATABLE READ, so the streaming pass and every
    aggregate of one report see the same rows even while new events arrive. SQLite (the
    embedded default, one writer) reads with its default isolation.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn
