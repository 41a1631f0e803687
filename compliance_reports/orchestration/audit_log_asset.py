"""The source audit-log table as an external asset upstream of every report."""

from dagster import AssetSpec

audit_log = AssetSpec(
    key="audit_log",
    description="Audit-log table of the source system (AUDIT_DB_URL): the events every report reads.",
    group_name="sources",
    kinds={"sql"},
    owners=["team:platform"],
    metadata={"table": "audit_log", "hash_chain": "per organization, (timestamp, id) order"},
)
