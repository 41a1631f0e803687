"""Dagster resources for the external systems: the two databases (and, later, files and channels)."""

from __future__ import annotations

from typing import Optional

from dagster import ConfigurableResource
from sqlalchemy import Engine

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.db.engine import cached_engine
from compliance_reports.settings import load_settings


class ComplianceDatabase(ConfigurableResource):
    """The application database (COMPLIANCE_DB_URL) and the audit database (AUDIT_DB_URL).

    URLs left empty are read from the environment when first used, never at import time, so
    a URL with a password never appears in run configuration.
    """

    compliance_db_url: Optional[str] = None
    audit_db_url: Optional[str] = None

    def _urls(self) -> tuple[str, str]:
        settings = load_settings()
        app = self.compliance_db_url or settings.compliance_db_url
        audit = self.audit_db_url or (settings.audit_db_url if not self.compliance_db_url else app)
        return app, audit

    def app_engine(self) -> Engine:
        return cached_engine(self._urls()[0])

    def audit_engine(self) -> Engine:
        return cached_engine(self._urls()[1])

    def load_report(self, report_id: str) -> ReportConfig:
        return config_store.get_report(self.app_engine(), report_id)

    def enabled_reports(self, frequency: str) -> list[ReportConfig]:
        return config_store.list_reports(self.app_engine(), frequency=frequency, enabled=True)


class ArtifactStoreResource(ConfigurableResource):
    """Where report documents, event extracts and exported files are kept.

    Empty fields come from the environment (settings.py) at use time. provider "local" keeps
    files under a folder (default: <data folder>/artifacts); "s3" under s3://bucket/prefix on
    any S3-compatible endpoint, with credentials from the environment variables named here.
    """

    provider: Optional[str] = None
    base_dir: Optional[str] = None
    bucket: Optional[str] = None
    prefix: Optional[str] = None
    endpoint_url: Optional[str] = None
    region: Optional[str] = None
    access_key_id_env: Optional[str] = None
    secret_access_key_env: Optional[str] = None
    checkpoint_key_env: str = "COMPLIANCE_CHECKPOINT_KEY"
    manifest_key_env: str = "COMPLIANCE_MANIFEST_KEY"

    def store(self, index_engine: Engine):
        """The configured store; every file it writes is recorded in `index_engine`'s file index
        (retention deletes only recorded files)."""
        from compliance_reports.artifacts.store import open_store

        return open_store(
            index_engine, provider=self.provider, base_dir=self.base_dir, bucket=self.bucket,
            prefix=self.prefix, endpoint_url=self.endpoint_url, region=self.region,
            access_key_id_env=self.access_key_id_env, secret_access_key_env=self.secret_access_key_env,
        )

    def checkpoint_key(self) -> bytes | None:
        from compliance_reports.audit.integrity import load_key

        return load_key(variable=self.checkpoint_key_env)

    def manifest_key(self) -> bytes | None:
        from compliance_reports.audit.integrity import load_key

        # Same strict reading (UTF-8 bytes of the value); the length rule is the manifest's.
        return load_key(variable=self.manifest_key_env)


def default_resources(
    app_db_url: str | None = None, audit_db_url: str | None = None
) -> dict[str, ConfigurableResource]:
    """The code location's resources; anything not given is resolved from the environment at use."""
    load_settings()  # a storage misconfiguration (artifact folder outside the root) stops the start
    return {
        "compliance_db": ComplianceDatabase(compliance_db_url=app_db_url, audit_db_url=audit_db_url),
        "artifact_store": ArtifactStoreResource(),
    }
