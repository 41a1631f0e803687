"""Where the databases and files live: the one place that reads the environment.

Everything else receives URLs and paths as arguments, so tests and resources can point the
code anywhere without touching process state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _default_data_dir() -> Path:
    # An editable checkout keeps its data next to the code ("project-local"); an installed
    # package has no project folder, so it falls back to the working directory.
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / "data"
    return Path.cwd() / "data"


def normalise_db_url(url: str) -> str:
    """Force the psycopg2 driver: SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    compliance_db_url: str
    audit_db_url: str
    artifact_provider: str = "local"       # local | s3
    artifact_dir: Path | None = None       # local provider; default <data_dir>/artifacts
    artifact_bucket: str | None = None     # s3 provider
    artifact_prefix: str = ""
    s3_endpoint_url: str | None = None     # MinIO, GCS interoperability, moto
    ui_url: str = "http://127.0.0.1:3000"  # links to runs in failure alerts
    artifact_retention_days: int = 2555    # seven years
    run_retention_days: int = 400          # Dagster runs and their event logs
    # A failed period is re-requested by its schedule this long after its last failure, at
    # most `retry_max` times; then it is left failed with a "gave_up" alert.
    retry_cooldown_min: int = 60
    retry_max: int = 3
    # Where alerts also go when their own destination is the failing one (or cannot carry
    # them): a destination name, or None for the JSON-lines file `alerts_log`.
    alert_fallback: str | None = None

    @property
    def artifacts_dir(self) -> Path:
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def alerts_log(self) -> Path:
        return self.data_dir / "alerts.log"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("COMPLIANCE_DATA_DIR") or _default_data_dir()).resolve()
    compliance = env.get("COMPLIANCE_DB_URL") or f"sqlite:///{data_dir / 'compliance.db'}"
    audit = env.get("AUDIT_DB_URL") or compliance
    artifact_dir = env.get("COMPLIANCE_ARTIFACT_DIR")
    return Settings(
        data_dir=data_dir,
        compliance_db_url=normalise_db_url(compliance),
        audit_db_url=normalise_db_url(audit),
        artifact_provider=env.get("COMPLIANCE_ARTIFACT_PROVIDER", "local"),
        artifact_dir=Path(artifact_dir).resolve() if artifact_dir else None,
        artifact_bucket=env.get("COMPLIANCE_ARTIFACT_BUCKET") or None,
        artifact_prefix=env.get("COMPLIANCE_ARTIFACT_PREFIX", ""),
        s3_endpoint_url=env.get("COMPLIANCE_S3_ENDPOINT_URL") or None,
        ui_url=(env.get("COMPLIANCE_UI_URL") or "http://127.0.0.1:3000").rstrip("/"),
        artifact_retention_days=_whole_number(env, "COMPLIANCE_ARTIFACT_RETENTION_DAYS", 2555, 1, "days"),
        run_retention_days=_whole_number(env, "COMPLIANCE_RUN_RETENTION_DAYS", 400, 1, "days"),
        retry_cooldown_min=_whole_number(env, "COMPLIANCE_RETRY_COOLDOWN_MIN", 60, 0, "minutes"),
        retry_max=_whole_number(env, "COMPLIANCE_RETRY_MAX", 3, 0, "retries"),
        alert_fallback=(env.get("COMPLIANCE_ALERT_FALLBACK") or "").strip() or None,
    )


def _whole_number(env, name: str, default: int, minimum: int, unit: str) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a whole number of {unit}, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"environment variable {name} must be at least {minimum}")
    return value
