"""The file index (`stored_files`): every file this project wrote, where, and what it held.

The artifact store and the storage channel record each file right after writing it; retention
asks the index which files are old enough and removes exactly those (and only while they still
hold the recorded content). Nothing is ever deleted because it was found in a folder or under a
bucket prefix. A file written again at the same location updates its row (new content, new
time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from compliance_reports.db.schema import stored_files

ARTIFACT = "artifact"
DESTINATION = "destination"

f = stored_files.c


@dataclass(frozen=True)
class IndexedFile:
    id: int
    kind: str
    owner: str
    location: str
    sha256: str | None
    size: int | None
    stored_at: datetime


class FileIndex:
    """The index rows of one store: the artifact store (owner "") or one storage destination."""

    def __init__(self, engine: Engine, kind: str, owner: str = "") -> None:
        if kind not in (ARTIFACT, DESTINATION):
            raise ValueError(f"file index kind must be {ARTIFACT} or {DESTINATION}, not {kind!r}")
        self.engine, self.kind, self.owner = engine, kind, owner

    def record(self, location: str, sha256: str | None, size: int | None, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        values = dict(kind=self.kind, owner=self.owner, location=location, sha256=sha256, size=size,
                      stored_at=now)
        with self.engine.begin() as conn:
            if conn.dialect.name in ("postgresql", "sqlite"):
                if conn.dialect.name == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert as dialect_insert
                else:
                    from sqlalchemy.dialects.sqlite import insert as dialect_insert
                stmt = dialect_insert(stored_files).values(**values)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["kind", "owner", "location"],
                    set_={"sha256": sha256, "size": size, "stored_at": now},
                ))
                return
            changed = conn.execute(
                update(stored_files).where(*self._where(location)).values(sha256=sha256, size=size, stored_at=now)
            ).rowcount
            if not changed:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(stored_files).values(**values))
                except IntegrityError:  # recorded concurrently: the newer write wins
                    conn.execute(update(stored_files).where(*self._where(location))
                                 .values(sha256=sha256, size=size, stored_at=now))

    def _where(self, location: str):
        return (f.kind == self.kind, f.owner == self.owner, f.location == location)

    def expired(self, cutoff: datetime, limit: int | None = None) -> list[IndexedFile]:
        """Files stored before `cutoff`, oldest first."""
        query = (
            select(stored_files)
            .where(f.kind == self.kind, f.owner == self.owner, f.stored_at < cutoff)
            .order_by(f.stored_at, f.id)
        )
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [IndexedFile(**dict(r)) for r in conn.execute(query).mappings()]

    def forget(self, entry: IndexedFile) -> None:
        """Drop a row, unless the file was written again since it was read (newer stored_at)."""
        with self.engine.begin() as conn:
            conn.execute(delete(stored_files).where(f.id == entry.id, f.stored_at == entry.stored_at))

    def count(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(stored_files)
                .where(f.kind == self.kind, f.owner == self.owner)
            ).scalar_one()
