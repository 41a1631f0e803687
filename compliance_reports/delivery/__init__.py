"""Delivery of exported report files: email, webhook and storage, through the exactly-once
delivery ledger (DESIGN sections 5 and 6). Plain Python: no Dagster import.

Entry points:
- `deliver_publication(engine, publication, destinations, ...)`: the publish job's delivery step;
- `retry_due(engine, load_publication, load_destination, now)`: the retry sweep;
- `notify_failure(engine, destinations, fields, message)`: deduplicated failure alerts;
- `ledger`: the table's state machine (claim / mark_sent / mark_failed / due_rows / list_rows).
"""
