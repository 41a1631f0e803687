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
    storage_root: Path                     # every local folder written to lies under it
    artifact_provider: str = "local"       # local | s3
    artifact_dir: Path | None = None       # local provider; default <data_dir>/artifacts
    artifact_bucket: str | None = None     # s3 provider
    artifact_prefix: str = ""
    s3_endpoint_url: str | None = None     # MinIO, GCS interoperability, moto
    ui_url: str = "http://127.0.0.1:3000"  # links to runs in failure alerts
    artifact_retention_days: int = 2555    # seven years
    run_retention_days: int = 400          # Dagster runs and their event logs

    @property
    def artifacts_dir(self) -> Path:
        return self.artifact_dir or self.data_dir / "artifacts"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("COMPLIANCE_DATA_DIR") or _default_data_dir()).resolve()
    compliance = env.get("COMPLIANCE_DB_URL") or f"sqlite:///{data_dir / 'compliance.db'}"
    audit = env.get("AUDIT_DB_URL") or compliance
    artifact_dir = env.get("COMPLIANCE_ARTIFACT_DIR")
    storage_root = env.get("COMPLIANCE_STORAGE_ROOT")
    settings = Settings(
        data_dir=data_dir,
        compliance_db_url=normalise_db_url(compliance),
        audit_db_url=normalise_db_url(audit),
        storage_root=Path(storage_root).resolve() if storage_root else data_dir,
        artifact_provider=env.get("COMPLIANCE_ARTIFACT_PROVIDER", "local"),
        artifact_dir=Path(artifact_dir).resolve() if artifact_dir else None,
        artifact_bucket=env.get("COMPLIANCE_ARTIFACT_BUCKET") or None,
        artifact_prefix=env.get("COMPLIANCE_ARTIFACT_PREFIX", ""),
        s3_endpoint_url=env.get("COMPLIANCE_S3_ENDPOINT_URL") or None,
        ui_url=(env.get("COMPLIANCE_UI_URL") or "http://127.0.0.1:3000").rstrip("/"),
        artifact_retention_days=_positive_int(env, "COMPLIANCE_ARTIFACT_RETENTION_DAYS", 2555),
        run_retention_days=_positive_int(env, "COMPLIANCE_RUN_RETENTION_DAYS", 400),
    )
    _check_artifact_dir(settings)
    return settings


def _check_artifact_dir(settings: Settings) -> None:
    """The local artifact store lives under the storage root like every other written folder."""
    if settings.artifact_provider != "local":
        return
    root = settings.storage_root
    folder = settings.artifacts_dir.resolve()  # a symbolic link counts where it leads
    if folder != root and not folder.is_relative_to(root):
        raise ValueError(
            f"COMPLIANCE_ARTIFACT_DIR {folder} is outside the storage root {root} "
            "(COMPLIANCE_STORAGE_ROOT, default the data folder): move the artifact folder under "
            "the root or set COMPLIANCE_STORAGE_ROOT to a folder that contains it"
        )


def _positive_int(env, name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a whole number of days, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"environment variable {name} must be at least 1")
    return value
