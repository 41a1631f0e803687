"""Where the databases and files live: the one place that reads the environment.

Everything else receives URLs and paths as arguments, so tests and resources can point the
code anywhere without touching process state.

One environment for every process: the CLI, the code location (and so its run workers) and
the Makefile read the environment file `$COMPLIANCE_ENV_FILE` (default
`<data folder>/compliance.env`, written by the demo) and then the process environment, which
wins. So `doctor`, `run` and the daemon agree on DAGSTER_HOME and the signing keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_FILE_VAR = "COMPLIANCE_ENV_FILE"
ENV_FILE_NAME = "compliance.env"

# The first period each report asset offers (COMPLIANCE_FIRST_PERIOD_<FREQUENCY>). Dagster counts
# every period from here as a partition, so a start near the audit log's first event keeps the
# UI's "missing" counts meaningful; periods x reports should stay under ~100,000 per asset.
DEFAULT_FIRST_PERIODS = {
    "daily": "2025-01-01",
    "weekly": "2024-01-01",  # a Monday
    "monthly": "2020-01-01",
    "quarterly": "2020-01-01",
}


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
    ui_url: str = "http://127.0.0.1:3000"  # links to runs in failure alerts and report mails
    # Where a web server publishes the storage root's folders: links to locally stored files
    # are this URL + the file's path below the root. None: no links to local files.
    public_base_url: str | None = None
    artifact_retention_days: int = 2555    # seven years
    run_retention_days: int = 400          # Dagster runs and their event logs
    # A failed period is re-requested by its schedule this long after its last failure, at
    # most `retry_max` times; then it is left failed with a "gave_up" alert.
    retry_cooldown_min: int = 60
    retry_max: int = 3
    # At most this many report runs requested by one schedule tick; a larger catch-up (the first
    # tick after an outage or a deployment) continues on the next ticks, newest periods first.
    max_runs_per_tick: int = 500
    # Where alerts also go when their own destination is the failing one (or cannot carry
    # them): a destination name, or None for the JSON-lines file `alerts_log`.
    alert_fallback: str | None = None
    # The audit_log freshness check warns when an organization's newest event is older.
    audit_silence_hours: int = 24
    first_periods: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FIRST_PERIODS))

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
        public_base_url=_http_url(env, "COMPLIANCE_PUBLIC_BASE_URL"),
        artifact_retention_days=_whole_number(env, "COMPLIANCE_ARTIFACT_RETENTION_DAYS", 2555, 1, "days"),
        run_retention_days=_whole_number(env, "COMPLIANCE_RUN_RETENTION_DAYS", 400, 1, "days"),
        retry_cooldown_min=_whole_number(env, "COMPLIANCE_RETRY_COOLDOWN_MIN", 60, 0, "minutes"),
        retry_max=_whole_number(env, "COMPLIANCE_RETRY_MAX", 3, 0, "retries"),
        max_runs_per_tick=_whole_number(env, "COMPLIANCE_MAX_RUNS_PER_TICK", 500, 1, "runs"),
        alert_fallback=(env.get("COMPLIANCE_ALERT_FALLBACK") or "").strip() or None,
        audit_silence_hours=_whole_number(env, "COMPLIANCE_AUDIT_SILENCE_HOURS", 24, 1, "hours"),
        first_periods=first_periods(env),
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


def _http_url(env, name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ValueError(f"environment variable {name} must be an http:// or https:// URL, not {raw!r}")
    return raw.rstrip("/")


def first_periods(environ=None) -> dict[str, str]:
    """frequency -> first period key, from COMPLIANCE_FIRST_PERIOD_<FREQUENCY> or the default.

    A value must be the first day of a period of its frequency (a Monday for weekly, the 1st of
    a quarter's month for quarterly); the error names the variable.
    """
    from compliance_reports.periods import validate_period_key

    # The environment file counts even before apply_environment ran: the code location builds
    # its partitions while definitions.py is still importing.
    env = {**read_env_file()[1], **os.environ} if environ is None else environ
    chosen = {}
    for frequency, default in DEFAULT_FIRST_PERIODS.items():
        name = f"COMPLIANCE_FIRST_PERIOD_{frequency.upper()}"
        raw = (env.get(name) or "").strip()
        if not raw:
            chosen[frequency] = default
            continue
        try:
            validate_period_key(raw, frequency)
        except ValueError as exc:
            raise ValueError(f"environment variable {name}: {exc}") from None
        chosen[frequency] = raw
    return chosen


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


def data_dir_of(environ) -> Path:
    return Path(environ.get("COMPLIANCE_DATA_DIR") or _default_data_dir()).resolve()


def env_file_path(environ=None) -> Path:
    """$COMPLIANCE_ENV_FILE, or <data folder>/compliance.env."""
    env = os.environ if environ is None else environ
    named = env.get(ENV_FILE_VAR)
    return Path(named).expanduser() if named else data_dir_of(env) / ENV_FILE_NAME


def parse_env_file(text: str, source: str = "environment file") -> dict[str, str]:
    """NAME=value lines; `export ` prefixes, blank lines and `#` comments are ignored.

    A value in matching single or double quotes is taken literally without them; an unquoted
    value ends at ` #` (a trailing comment).
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"{source} line {number}: expected NAME=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


def read_env_file(environ=None) -> tuple[Path, dict[str, str]]:
    """The environment file's path and values ({} when the file does not exist)."""
    path = env_file_path(environ)
    if not path.is_file():
        return path, {}
    return path, parse_env_file(path.read_text(), str(path))


def apply_environment(default_dagster_home: bool = True) -> dict[str, str]:
    """Load the environment file into this process (existing variables are kept).

    With `default_dagster_home`, DAGSTER_HOME becomes <data folder>/dagster_home when unset, so
    every command addresses the instance the Makefile's `dev` uses (the code location leaves it
    alone: its process already runs on an instance). Returns the variables taken from the file.
    """
    _, values = read_env_file()
    taken = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(taken)
    if default_dagster_home:
        os.environ.setdefault("DAGSTER_HOME", str(data_dir_of(os.environ) / "dagster_home"))
    return taken


def update_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set variables in an environment file, keeping its other lines; private to the owner."""
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(updates)
    out = []
    for line in lines:
        name = line.strip().removeprefix("export ").partition("=")[0].strip()
        if name in pending:
            out.append(f"{name}={pending.pop(name)}")
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in out))
    path.chmod(0o600)
