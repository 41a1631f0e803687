"""Delivery of exported report files: email, webhook and storage, through the exactly-once
delivery ledger (DESIGN section 6, README "Delivery"). Plain Python: no Dagster import.

Entry points:
- `deliver_publication(engine, publication, destinations, ...)`: the publish job's delivery step;
- `retry_due(engine, load_publication, load_destination)`: the retry sweep;
- `redeliver(engine, report_id, period, destinations, load_publication)`: a deliberate resend;
- `notify_failure(engine, destinations, fields, message)`: deduplicated failure alerts;
- `ledger`: the table's state machine (claim / renew_lease / mark_sent / record_failure /
  reschedule) and its reads (ledger_queries: due_rows / list_rows / latest_issue).
"""
