"""The fault matrix (issue 13): one test per fault, each against real peers, asserting what the
receiver got (copies per recipient), the final ledger rows and the alerts. README's "Fault
matrix" table names the test behind every row.

Budget: the whole folder stays under 3 minutes on two cores (each module states its own).
Modules: test_database_outages (the test's own PostgreSQL cluster, stopped and restarted),
test_schedule_faults, test_delivery_faults, test_crashes (kill -9 of real processes).
"""
