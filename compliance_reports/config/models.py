"""Validated configuration: reports, destinations and templates (DESIGN section 3).

YAML files, the CLI and the database all go through these models, so a configuration that is
stored is one that validated, and one that validated can run: the checks behind the fields
(config/validation.py) cover what the run and the delivery will need. Secrets are never fields:
a destination names the environment variable that holds each secret.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from compliance_reports.config.validation import (
    MAX_CATEGORIES,
    MAX_LIST,
    MAX_RECIPIENTS,
    MAX_REFERENCES,
    ConfigDate,
    CriterionValue,
    EmailAddress,
    EnvName,
    Hhmm,
    Name,
    StrictBool,
    StrictStr,
    Text,
    bounded_float,
    bounded_int,
    check_action_categories,
    check_actor,
    check_bucket,
    check_date,
    check_day_of_month,
    check_env_mapping,
    check_header_name,
    check_host,
    check_http_url,
    check_key_template,
    check_literal_headers,
    check_organization_id,
    check_query_name,
    check_region,
    check_slug,
    check_subject_template,
    check_timezone,
    check_unique,
)

Frequency = Literal["daily", "weekly", "monthly", "quarterly"]
ReportType = Literal[
    "hipaa_audit_trail", "gdpr_processing_activities", "general_compliance",
    "integrity_verification", "custom",
]
ExportFormat = Literal["pdf", "csv", "json", "xml", "parquet", "xlsx"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DataClassification = Literal["PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"]
EventStatus = Literal["attempt", "success", "failure"]
RequestAction = Literal["schedule", "unschedule", "run_now"]

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

CriteriaList = Annotated[list[CriterionValue], Field(default_factory=list, max_length=MAX_LIST)]


class Criteria(StrictModel):
    """Event filters. The report's own organization always applies and cannot be filtered."""

    principal_ids: CriteriaList
    actions: CriteriaList
    data_classifications: list[DataClassification] = Field(default_factory=list, max_length=4)
    statuses: list[EventStatus] = Field(default_factory=list, max_length=3)
    resource_types: CriteriaList
    verified_only: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _no_organization_filter(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if not isinstance(key, str):
                    continue
                if "organization" in key.lower() or key.lower() in {"org", "org_id", "orgs"}:
                    raise ValueError(
                        f"criteria cannot filter on organization ('{key}'): every report is "
                        "scoped to its own organization_id"
                    )
        return data


class Schedule(StrictModel):
    frequency: Frequency
    time: Hhmm = "06:00"
    timezone: StrictStr = "UTC"
    day_of_week: Weekday | None = None
    day_of_month: Annotated[int | Literal["last"] | None, BeforeValidator(check_day_of_month)] = None
    start_date: ConfigDate | None = None
    end_date: ConfigDate | None = None
    max_catch_up: int = bounded_int(1, 366, 3)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

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
    encrypt: StrictBool = False
    encryption_key_env: EnvName | None = None
    include_events: StrictBool = True
    # Needs COMPLIANCE_CHECKPOINT_KEY: the pseudonyms are keyed (checked where it is applied).
    redact_identifiers: StrictBool = False

    @model_validator(mode="after")
    def _key_when_encrypting(self) -> ExportSettings:
        if self.encrypt and not self.encryption_key_env:
            raise ValueError("encrypt is true but encryption_key_env names no environment variable")
        return self


class ReportOptions(StrictModel):
    """Thresholds and presentation knobs of the report content; defaults suit most tenants."""

    top_n: int = bounded_int(1, 1000, 10)
    after_hours_start: Hhmm = "20:00"
    after_hours_end: Hhmm = "06:00"
    weekend_is_after_hours: StrictBool = True
    failed_login_threshold: int = bounded_int(1, 1_000_000, 5)
    denied_access_threshold: int = bounded_int(1, 1_000_000, 5)
    bulk_access_threshold: int = bounded_int(1, 100_000_000, 100)
    distinct_patients_threshold: int = bounded_int(1, 100_000_000, 50)
    dsr_deadline_days: int = bounded_int(1, 3660, 30)
    breach_notification_hours: int = bounded_int(1, 8784, 72)
    pdf_event_limit: int = bounded_int(0, 5000, 200)
    # A longer table shows this many rows in the PDF when another file of the same publication
    # holds all of them, the JSON document added if none does; a PDF-only publication lists
    # every row (exporters/pdf_cap.py).
    pdf_table_row_limit: int = bounded_int(25, 100_000, 200)
    # A silence in the organization's audit log longer than this is a coverage finding.
    max_silence_hours: int = bounded_int(1, 8784, 24)
    action_categories: dict[StrictStr, list[StrictStr]] = Field(
        default_factory=dict,
        max_length=MAX_CATEGORIES,
        description="category -> action patterns ('*' and '?', e.g. 'fhir.*.read'); overrides the defaults",
    )

    @field_validator("action_categories")
    @classmethod
    def _categories(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return check_action_categories(value)


ReferenceList = Annotated[list[StrictStr], Field(default_factory=list, max_length=MAX_REFERENCES)]


class ReportConfig(StrictModel):
    id: StrictStr
    name: Name
    organization_id: StrictStr
    report_type: ReportType
    criteria: Criteria = Field(default_factory=Criteria)
    schedule: Schedule
    formats: list[ExportFormat] = Field(
        default_factory=lambda: ["pdf", "csv"], min_length=1, max_length=len(FORMATS)
    )
    export: ExportSettings = Field(default_factory=ExportSettings)
    options: ReportOptions = Field(default_factory=ReportOptions)
    destinations: ReferenceList
    notify_on_failure: ReferenceList
    enabled: StrictBool = True
    # Set from the applying user (or `reports apply --as`), never from a file: the loader
    # drops it from documents with a warning; the database column is the record.
    created_by: StrictStr | None = None
    version: int | None = bounded_int(1, 2**31 - 1, None)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_slug(value, "id")

    @field_validator("organization_id")
    @classmethod
    def _org(cls, value: str) -> str:
        return check_organization_id(value)

    @field_validator("created_by")
    @classmethod
    def _created_by(cls, value: str | None) -> str | None:
        return None if value is None else check_actor(value)

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, value: list[str]) -> list[str]:
        return check_unique(value, "formats")

    @field_validator("destinations", "notify_on_failure")
    @classmethod
    def _destination_names(cls, value: list[str]) -> list[str]:
        for name in value:
            check_slug(name, "destination name")
        return check_unique(value, "the list")

    @property
    def frequency(self) -> str:
        return self.schedule.frequency

    def stored(self) -> dict[str, Any]:
        """The JSON stored in the database (version and created_by live in their own columns)."""
        return self.model_dump(mode="json", exclude={"version", "created_by"}, by_alias=True)


class ScheduleRequest(StrictModel):
    """A row of `schedule_requests`, written by the CLI or by any other system."""

    report_id: StrictStr
    action: RequestAction
    period: StrictStr | None = None
    requested_by: StrictStr | None = None

    @field_validator("report_id")
    @classmethod
    def _report_id(cls, value: str) -> str:
        return check_slug(value, "report_id")

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            check_date(value, "period")
        return value

    @field_validator("requested_by")
    @classmethod
    def _requested_by(cls, value: str | None) -> str | None:
        return None if value is None else check_actor(value, "requested_by")


# ---------------------------------------------------------------- destinations


class RetryPolicy(StrictModel):
    """Retries of one delivery: a short in-run budget, then the retry sweep until give-up.

    max_attempts: attempts inside one run (publish step, alert) before the row is handed to the
    retry sweep as `failed`; the sweep keeps retrying with the same backoff, continued
    (delay = min(max_delay_s, initial_delay_s * multiplier^n), jittered, or Retry-After), and a
    row that still fails after give_up_after_h hours from its creation is `dead`. Time bounds the
    total: at most max_attempts per run plus about one attempt per max_delay_s/2 until give-up.
    """

    max_attempts: int = bounded_int(1, 50, 5)
    initial_delay_s: float = bounded_float(0, 3600, 2.0)
    multiplier: float = bounded_float(0, 10, 2.0, ge=1)
    max_delay_s: float = bounded_float(0, 86400, 300.0)
    give_up_after_h: float = bounded_float(0, 24 * 31, 24.0)


class _DestinationBase(StrictModel):
    name: StrictStr
    description: Text | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_slug(value, "name")


class EmailDestination(_DestinationBase):
    type: Literal["email"]
    host: StrictStr
    port: int = bounded_int(1, 65535, 587)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: Name | None = None
    password_env: EnvName | None = None
    from_address: EmailAddress = Field(alias="from")
    to: list[EmailAddress] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    cc: list[EmailAddress] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[EmailAddress] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    # A severity prefix ("[2 critical] ") goes in front of the rendered template.
    subject: StrictStr = "{report_name} - {period_label}"
    max_message_mb: float = bounded_float(0, 1024, 10.0)
    oversize: Literal["link", "fail"] = "link"
    timeout_s: float = Field(default=60.0, gt=0, le=300)  # each SMTP step (socket timeout)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return check_subject_template(value)

    @model_validator(mode="after")
    def _credentials(self) -> EmailDestination:
        if self.password_env and not self.username:
            raise ValueError("password_env is set but username is missing")
        return self


class WebhookDestination(_DestinationBase):
    type: Literal["webhook"]
    url: StrictStr
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    headers_env: dict[StrictStr, StrictStr] = Field(
        default_factory=dict, description="header name -> environment variable holding its value"
    )
    query_env: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="query parameter -> environment variable holding its value (added at send time)",
    )
    signing_secret_env: EnvName | None = None
    timeout_s: float = bounded_float(0, 300, 10.0)
    inline_max_kb: int = bounded_int(0, 10240, 256)
    allow_private_network: StrictBool = Field(
        default=False,
        description="allow a url resolving to a loopback, private, link-local or other internal address",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return dict(check_literal_headers(value))

    @field_validator("headers_env")
    @classmethod
    def _headers_env(cls, value: dict[str, str]) -> dict[str, str]:
        return dict(check_env_mapping(value, "header", check_header_name))

    @field_validator("query_env")
    @classmethod
    def _query_env(cls, value: dict[str, str]) -> dict[str, str]:
        return dict(check_env_mapping(value, "query parameter", check_query_name))

    @model_validator(mode="after")
    def _no_header_twice(self) -> WebhookDestination:
        both = {h.lower() for h in self.headers} & {h.lower() for h in self.headers_env}
        if both:
            raise ValueError(f"header(s) {sorted(both)} are given in both headers and headers_env")
        return self


class StorageDestination(_DestinationBase):
    type: Literal["storage"]
    provider: Literal["local", "s3"] = "local"
    base_path: str = ""
    bucket: StrictStr | None = None
    endpoint_url: StrictStr | None = None
    region: StrictStr | None = None
    access_key_id_env: EnvName | None = None
    secret_access_key_env: EnvName | None = None
    # The run id keeps every run's evidence apart: a key is never overwritten.
    key_template: StrictStr = "{organization_id}/{report_id}/{period}/{run_id}/{filename}"
    retention_days: int | None = bounded_int(1, 36600, None)
    allow_private_network: StrictBool = Field(
        default=False,
        description="allow an endpoint_url resolving to a loopback, private, link-local or other internal address",
    )

    @field_validator("key_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_key_template(value)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        return None if value is None else check_bucket(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str, info: ValidationInfo) -> str:
        # A local folder is relative to the storage root; an s3 base_path is a key prefix
        # (checked like a key when used).
        if info.data.get("provider") == "local" and value:
            from compliance_reports.artifacts.storage_root import folder_problem

            problem = folder_problem(value)
            if problem:
                raise ValueError(f"base_path {value!r} {problem}")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value, "endpoint_url")

    @model_validator(mode="after")
    def _provider_fields(self) -> StorageDestination:
        if self.provider == "s3" and not self.bucket:
            raise ValueError("an s3 storage destination needs bucket")
        if self.provider == "local" and not self.base_path:
            raise ValueError("a local storage destination needs base_path (a folder)")
        if self.provider == "local" and self.bucket:
            raise ValueError("bucket is only used by provider s3")
        if self.provider == "local" and (self.endpoint_url or self.allow_private_network):
            raise ValueError("endpoint_url and allow_private_network are only used by provider s3")
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

TEMPLATE_FIELDS = set(ReportConfig.model_fields) - {"id", "version", "organization_id", "created_by"}


class ReportTemplate(StrictModel):
    """Defaults for new report configurations; a report names it with `template:`."""

    name: StrictStr
    description: Text | None = None
    defaults: dict[StrictStr, Any]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_slug(value, "name")

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
