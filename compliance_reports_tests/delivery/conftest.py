"""Real peers for delivery tests: an SMTP server (aiosmtpd), HTTP servers, a stored publication."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from compliance_reports.artifacts.publication import Publication, PublishedFile
from compliance_reports.config.models import RetryPolicy
from compliance_reports_tests.peers import free_port  # noqa: F401 - re-exported for the tests here

FAST_RETRY = {"max_attempts": 3, "initial_delay_s": 0.01, "multiplier": 2.0, "max_delay_s": 0.05}


def fast_retry(**overrides) -> RetryPolicy:
    return RetryPolicy(**{**FAST_RETRY, **overrides})


# ---------------------------------------------------------------- clock


class FakeClock:
    """now() and sleep() for tests: sleeping advances time instantly and is recorded."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime.now(timezone.utc).replace(microsecond=0)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def storage_root(tmp_path, monkeypatch):
    """Local storage destinations of these tests live under the test's own folder."""
    root = tmp_path / "root"
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(root))  # its artifacts folder is inside the root
    monkeypatch.setenv("COMPLIANCE_STORAGE_ROOT", str(root))
    return root


# Local receivers (HTTP peers, moto) listen on 127.0.0.1: their destinations must allow it.
LOCAL_RECEIVER = {"allow_private_network": True}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---------------------------------------------------------------- publication


def make_publication(folder: Path, sizes: dict[str, int] | None = None, *, seed: bytes = b"x", **fields) -> Publication:
    """Exported files with deterministic content, a manifest.json listing them, a Publication."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {"report.pdf": 1500, "events.csv": 900, "report.json": 400}
    entries, files = [], []
    for name, size in sizes.items():
        block = hashlib.sha256(seed + name.encode()).digest()
        data = (block * (size // len(block) + 1))[:size]
        if name.endswith(".csv"):
            data = (b"id,action\n" + b"1,login\n" * size)[:size]
        path = folder / name
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append({"filename": name, "format": name.split(".")[1], "size": size, "sha256": digest})
        files.append(PublishedFile(filename=name, path=path, size=size, sha256=digest))
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"report_id": fields.get("report_id", "hipaa-weekly"), "files": entries}, indent=2))
    base = dict(
        report_id="hipaa-weekly", organization_id="org-1", report_name="HIPAA weekly audit trail",
        report_type="hipaa_audit_trail", period="2026-11-23", run_id="run-0001",
    )
    base.update(fields)
    return Publication(
        files=files, manifest_path=manifest,
        manifest_sha256=hashlib.sha256(manifest.read_bytes()).hexdigest(),
        artifact_location=str(folder), **base,
    )


@pytest.fixture
def publication(tmp_path) -> Publication:
    return make_publication(tmp_path / "artifacts" / "hipaa-weekly" / "2026-11-23")


# ---------------------------------------------------------------- databases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request):
    """The migrated application database on SQLite and on PostgreSQL."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def ledger_texts(engine) -> list[str]:
    """Every value of every ledger row, as text."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM deliveries")).all()
    return [str(v) for row in rows for v in row if v is not None]



# ---------------------------------------------------------------- real stored report runs


class StoredRuns:
    """Report runs of one period stored and exported the way the publish job does it."""

    def __init__(self, engine, base: Path) -> None:
        from compliance_reports.artifacts.store import LocalArtifactStore
        from compliance_reports.config.models import ReportConfig

        self.engine = engine
        self.base = base
        self.store = LocalArtifactStore(base / "artifacts")
        self.report = ReportConfig.model_validate({
            "id": "hipaa-monthly", "name": "HIPAA monthly", "organization_id": "acme-health",
            "report_type": "hipaa_audit_trail", "formats": ["json", "csv"],
            "schedule": {"frequency": "monthly", "timezone": "Europe/Berlin"},
        })

    def document(self, run_id: str, *, failed_logins: int = 311) -> dict:
        from compliance_reports_tests.exporters.sample import sample_document

        doc = sample_document()
        doc["header"].update(run_id=run_id, generated_at=f"2026-12-01T06:{len(run_id):02d}:00Z")
        doc["summary"][2]["value"] = failed_logins
        return doc

    def store_run(self, run_id: str, **content) -> None:
        """What the report asset leaves: the run's document and events in the artifact store."""
        from compliance_reports.reports.document import canonical_json
        from compliance_reports_tests.exporters.sample import write_events

        folder = self.base / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "report.json").write_bytes(canonical_json(self.document(run_id, **content)))
        parts = ("acme-health", "hipaa-monthly", "2026-11-01", run_id)
        self.store.put_file((*parts, "report.json"), folder / "report.json")
        self.store.put_file((*parts, "events.parquet"), write_events(folder / "events.parquet"))

    def publish(self, run_id: str, **content) -> Publication:
        """Store a run, export it (marking a re-issue from the ledger) and load the stored set."""
        from compliance_reports.exporters.publishing import export_and_store, fetch_publication

        self.store_run(run_id, **content)
        parts = ("acme-health", "hipaa-monthly", "2026-11-01", run_id)
        published = export_and_store(
            self.store, self.report, "2026-11-01", run_id,
            self.store.location_for((*parts, "report.json")),
            self.store.location_for((*parts, "events.parquet")),
            self.base / "scratch" / run_id, None, ledger_engine=self.engine,
        )
        return fetch_publication(self.store, published, self.report, self.base / "fetched" / run_id)


@pytest.fixture
def stored_runs(engine, tmp_path) -> StoredRuns:
    return StoredRuns(engine, tmp_path / "stored")
