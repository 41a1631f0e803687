"""Delivery of exported report files: email, webhook and storage, through the exactly-once
delivery ledger (DESIGN sections 5 and 6). Plain Python: no Dagster import.

Entry points:
- `deliver_publication(engine, publication, destinations, ...)`: the publish job's delivery step;
- `retry_due(engine, load_publication, load_destination, now)`: the retry sweep;
- `notify_failure(engine, destinations, fields, message)`: deduplicated failure alerts;
- `ledger`: the table's state machine (claim / mark_sent / mark_failed / due_rows / list_rows).
"""

from compliance_reports.delivery.alerts import AlertFields, notify_failure, send_failure_alert
from compliance_reports.delivery.dispatcher import (
    DeliveryOutcome,
    deliver_publication,
    deliver_row,
    recipients_for,
    retry_due,
)
from compliance_reports.delivery.errors import ConfigurationError, DeliveryError, SendResult
from compliance_reports.delivery.publication import Publication, PublishedFile, media_type_for

__all__ = [
    "AlertFields",
    "ConfigurationError",
    "DeliveryError",
    "DeliveryOutcome",
    "Publication",
    "PublishedFile",
    "SendResult",
    "deliver_publication",
    "deliver_row",
    "media_type_for",
    "notify_failure",
    "recipients_for",
    "retry_due",
    "send_failure_alert",
]
