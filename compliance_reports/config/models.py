"""Validated configuration: reports, destinations and templates (DESIGN section 3).

YAML files, the CLI and the database all go through these models, so a configuration that is
stored is one that validated. Secrets are never fields: a destination names the environment
variable that holds each secret.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ORG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

Frequency = Literal["daily", "weekly", "monthly", "quarterly"]
ReportType = Literal[
    "hipaa_audit_trail", "gdpr_processing_activities", "general_compliance",
    "integrity_verification", "custom",
]
ExportFormat = Literal["pdf", "csv", "json", "xml", "parquet"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DataClassification = Literal["PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"]
EventStatus = Literal["attempt", "success", "failure"]

REPORT_TYPES: tuple[str, ...] = ReportType.__args__  # type: ignore[attr-defined]
FORMATS: tuple[str, ...] = ExportFormat.__args__  # type: ignore[attr-defined]

# Field names that would hold a secret in clear text, and the *_env field to use instead.
PLAINTEXT_SECRET_FIELDS = {
    "password": "password_env",
    "secret": "signing_secret_env",
    "signing_secret": "signing_secret_env",
    "token": "headers_env",
    "api_key": "headers_env",
    "access_key_id": "access_key_id_env",
    "secret_access_key": "secret_access_key_env",
    "encryption_key": "encryption_key_env",
}
# Headers that carry credentials: their values must come from the environment.
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}


def _slug(value: str, what: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must be a slug: lowercase letters, digits, '-' and '_' "
            "(no spaces, no '|')"
        )
    return value


def _env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


class StrictModel(BaseModel):
    """Unknown fields are errors (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_plaintext_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in PLAINTEXT_SECRET_FIELDS and key not in cls.model_fields:
                    raise ValueError(
                        f"field '{key}' would store a secret in clear text; put the secret in an "
                        f"environment variable and name it in '{PLAINTEXT_SECRET_FIELDS[key]}'"
                    )
        return data


# ---------------------------------------------------------------- reports


class Criteria(StrictModel):
    """Event filters. The report's own organization always applies and cannot be filtered."""

    principal_ids: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    data_classifications: list[DataClassification] = Field(default_factory=list)
    statuses: list[EventStatus] = Field(default_factory=list)
    resource_types: list[str] = Field(default_factory=list)
    verified_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_organization_filter(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if "organization" in key.lower() or key.lower() in {"org", "org_id", "orgs"}:
                    raise ValueError(
                        f"criteria cannot filter on organization ('{key}'): every report is "
                        "scoped to its own organization_id"
                    )
        return data


class Schedule(StrictModel):
    frequency: Frequency
    time: str = "06:00"
    timezone: str = "UTC"
    day_of_week: Weekday | None = None
    day_of_month: int | Literal["last"] | None = None
    start_date: date | None = None
    end_date: date | None = None
    max_catch_up: int = Field(default=3, ge=1, le=366)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not TIME_RE.match(value):
            raise ValueError(f"time {value!r} must be HH:MM on a 24-hour clock (00:00 to 23:59)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Berlin)") from None
        return value

    @field_validator("day_of_month")
    @classmethod
    def _day_of_month(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 31:
            raise ValueError(f"day_of_month {value} must be between 1 and 31, or 'last'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if self.frequency == "weekly" and self.day_of_week is None:
            raise ValueError("a weekly schedule needs day_of_week (monday..sunday)")
        if self.frequency != "weekly" and self.day_of_week is not None:
            raise ValueError(f"day_of_week is only used by weekly schedules, not {self.frequency}")
        if self.frequency in ("daily", "weekly") and self.day_of_month is not None:
            raise ValueError(
                f"day_of_month is only used by monthly and quarterly schedules, not {self.frequency}"
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    def to_spec(self):
        """The plain scheduling spec used by the period and slot maths."""
        from compliance_reports.periods import ScheduleSpec

        return ScheduleSpec(
            frequency=self.frequency,
            time=self.time,
            timezone=self.timezone,
            day_of_week=self.day_of_week,
            day_of_month=self.day_of_month,
            start_date=self.start_date,
            end_date=self.end_date,
            max_catch_up=self.max_catch_up,
        )


class ExportSettings(StrictModel):
    compression: Literal["none", "gzip", "zip"] = "none"
    encrypt: bool = False
    encryption_key_env: str | None = None
    include_events: bool = True
    redact_identifiers: bool = False

    _env = field_validator("encryption_key_env")(classmethod(lambda cls, v: _env_name(v)))

    @model_validator(mode="after")
    def _key_when_encrypting(self) -> ExportSettings:
        if self.encrypt and not self.encryption_key_env:
            raise ValueError("encrypt is true but encryption_key_env names no environment variable")
        return self


class ReportOptions(StrictModel):
    """Thresholds and presentation knobs of the report content; defaults suit most tenants."""

    top_n: int = Field(default=10, ge=1, le=1000)
    after_hours_start: str = "20:00"
    after_hours_end: str = "06:00"
    weekend_is_after_hours: bool = True
    failed_login_threshold: int = Field(default=5, ge=1)
    denied_access_threshold: int = Field(default=5, ge=1)
    bulk_access_threshold: int = Field(default=100, ge=1)
    distinct_patients_threshold: int = Field(default=50, ge=1)
    dsr_deadline_days: int = Field(default=30, ge=1)
    breach_notification_hours: int = Field(default=72, ge=1)
    pdf_event_limit: int = Field(default=200, ge=0)
    action_categories: dict[str, list[str]] = Field(
        default_factory=dict,
        description="category -> action patterns (fnmatch, e.g. 'fhir.*.read'); overrides the defaults",
    )

    @field_validator("after_hours_start", "after_hours_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not TIME_RE.match(value):
            raise ValueError(f"{value!r} must be HH:MM on a 24-hour clock")
        return value


class ReportConfig(StrictModel):
    id: str
    name: str = Field(min_length=1, max_length=255)
    organization_id: str
    report_type: ReportType
    criteria: Criteria = Field(default_factory=Criteria)
    schedule: Schedule
    formats: list[ExportFormat] = Field(default_factory=lambda: ["pdf", "csv"], min_length=1)
    export: ExportSettings = Field(default_factory=ExportSettings)
    options: ReportOptions = Field(default_factory=ReportOptions)
    destinations: list[str] = Field(default_factory=list)
    notify_on_failure: list[str] = Field(default_factory=list)
    enabled: bool = True
    created_by: str | None = None
    version: int | None = Field(default=None, ge=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if len(value) > 128:
            raise ValueError("id is longer than 128 characters")
        return _slug(value, "id")

    @field_validator("organization_id")
    @classmethod
    def _org(cls, value: str) -> str:
        if not ORG_RE.match(value):
            raise ValueError(
                f"organization_id {value!r} may hold letters, digits, '.', '_', ':' and '-' only"
            )
        return value

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("formats lists a format twice")
        return value

    @field_validator("destinations", "notify_on_failure")
    @classmethod
    def _destination_names(cls, value: list[str]) -> list[str]:
        for name in value:
            _slug(name, "destination name")
        return value

    @property
    def frequency(self) -> str:
        return self.schedule.frequency

    def stored(self) -> dict[str, Any]:
        """The JSON stored in the database (version lives in its own column)."""
        return self.model_dump(mode="json", exclude={"version"}, by_alias=True)


# ---------------------------------------------------------------- destinations


class RetryPolicy(StrictModel):
    """Retries of one delivery: a short in-run budget, then the retry sweep until give-up.

    max_attempts: attempts inside one run (publish step, alert) before the row is handed to the
    retry sweep as `failed`; the sweep keeps retrying with the same backoff, continued
    (delay = min(max_delay_s, initial_delay_s * multiplier^n), jittered, or Retry-After), and a
    row that still fails after give_up_after_h hours from its creation is `dead`. Time bounds the
    total: at most max_attempts per run plus about one attempt per max_delay_s/2 until give-up.
    """

    max_attempts: int = Field(default=5, ge=1, le=50)
    initial_delay_s: float = Field(default=2.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay_s: float = Field(default=300.0, gt=0)
    give_up_after_h: float = Field(default=24.0, gt=0, le=24 * 31)


class _DestinationBase(StrictModel):
    name: str
    description: str | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug(value, "name")


class EmailDestination(_DestinationBase):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_address: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = "Compliance report {report_name} ({period})"
    max_message_mb: float = Field(default=10.0, gt=0)
    oversize: Literal["link", "fail"] = "link"
    timeout_s: float = Field(default=60.0, gt=0, le=300)  # each SMTP step (socket timeout)

    _env = field_validator("password_env")(classmethod(lambda cls, v: _env_name(v)))

    @field_validator("from_address", "to", "cc", "bcc")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if not EMAIL_RE.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailDestination:
        if self.password_env and not self.username:
            raise ValueError("password_env is set but username is missing")
        return self


class WebhookDestination(_DestinationBase):
    type: Literal["webhook"]
    url: str
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value"
    )
    signing_secret_env: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    inline_max_kb: int = Field(default=256, ge=0)

    _env = field_validator("signing_secret_env")(classmethod(lambda cls, v: _env_name(v)))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url {value!r} must be an http:// or https:// URL")
        if parsed.username or parsed.password:
            raise ValueError("url must not carry credentials; use headers_env")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in CREDENTIAL_HEADERS:
                raise ValueError(
                    f"header '{name}' carries a credential; set it through headers_env "
                    f"({name}: ENV_VAR_NAME)"
                )
        return value

    @field_validator("headers_env")
    @classmethod
    def _headers_env(cls, value: dict[str, str]) -> dict[str, str]:
        for env in value.values():
            _env_name(env)
        return value


KEY_PLACEHOLDERS = {"organization_id", "report_id", "period", "format", "filename", "run_id"}


class StorageDestination(_DestinationBase):
    type: Literal["storage"]
    provider: Literal["local", "s3"] = "local"
    base_path: str = ""
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    # The run id keeps every run's evidence apart: a key is never overwritten.
    key_template: str = "{organization_id}/{report_id}/{period}/{run_id}/{filename}"
    retention_days: int | None = Field(default=None, ge=1)

    @field_validator("access_key_id_env", "secret_access_key_env")
    @classmethod
    def _envs(cls, value: str | None) -> str | None:
        return _env_name(value)

    @field_validator("key_template")
    @classmethod
    def _template(cls, value: str) -> str:
        names = set(re.findall(r"{([^{}]*)}", value))
        unknown = names - KEY_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"key_template uses unknown placeholder(s) {sorted(unknown)}; "
                f"allowed: {sorted(KEY_PLACEHOLDERS)}"
            )
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("key_template must be relative and must not contain '..'")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ValueError(f"endpoint_url {value!r} must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _provider_fields(self) -> StorageDestination:
        if self.provider == "s3" and not self.bucket:
            raise ValueError("an s3 storage destination needs bucket")
        if self.provider == "local" and not self.base_path:
            raise ValueError("a local storage destination needs base_path (a folder)")
        if self.provider == "local" and self.bucket:
            raise ValueError("bucket is only used by provider s3")
        return self


DestinationConfig = Annotated[
    Union[EmailDestination, WebhookDestination, StorageDestination],
    Field(discriminator="type"),
]


class _DestinationDocument(BaseModel):
    destination: DestinationConfig


def parse_destination(data: dict[str, Any]) -> EmailDestination | WebhookDestination | StorageDestination:
    return _DestinationDocument.model_validate({"destination": data}).destination


# ---------------------------------------------------------------- templates

TEMPLATE_FIELDS = set(ReportConfig.model_fields) - {"id", "version", "organization_id"}


class ReportTemplate(StrictModel):
    """Defaults for new report configurations; a report names it with `template:`."""

    name: str
    description: str | None = None
    defaults: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug(value, "name")

    @field_validator("defaults")
    @classmethod
    def _defaults(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - TEMPLATE_FIELDS
        if unknown:
            raise ValueError(
                f"defaults has field(s) a template cannot set: {sorted(unknown)}; "
                f"allowed: {sorted(TEMPLATE_FIELDS)}"
            )
        return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override wins; nested mappings merge, lists are replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
