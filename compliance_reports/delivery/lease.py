"""Leases that fit the work: how long a claim is held, and the heartbeat that renews it.

A lease must outlast the longest send a channel can make, otherwise another worker takes the
row over while the first is still sending and the receiver gets two copies. The worst case of
one send (one attempt; retries are separate claims):

- email: every SMTP step (connect, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the message,
  QUIT) may wait the destination's socket timeout (timeout_s, default 60 s) -> 10 x timeout_s;
- webhook: one request, connect timeout plus read timeout -> 2 x timeout_s (requests makes no
  retries of its own);
- storage: per stored object, S3 makes up to 3 tries of connect (60 s) plus read (60 s); a
  local copy is allowed 60 s.

lease = worst case + max(30 s, 25 %). While a send is in progress `LeaseKeeper` renews the lease
every third of its length (same attempt only), so even a send slower than its worst case (a
large upload) keeps its row; a worker that dies stops renewing and the row is taken over once
the lease runs out.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable

from sqlalchemy import Engine

from compliance_reports.delivery import ledger

SMTP_STEPS = 10
S3_TRIES = 3
S3_CONNECT_PLUS_READ_S = 120.0
LOCAL_COPY_S = 60.0
DEFAULT_OBJECTS = 8  # storage without a publication at hand (alerts never go to storage)
MIN_MARGIN_S = 30.0


def send_budget_s(destination, publication=None) -> float:
    """The longest one send to `destination` can take (see the module docstring)."""
    if destination.type == "email":
        return SMTP_STEPS * float(destination.timeout_s)
    if destination.type == "webhook":
        return 2 * float(destination.timeout_s)
    if destination.type == "storage":
        objects = len(publication.files) + 1 if publication is not None else DEFAULT_OBJECTS
        per_object = S3_TRIES * S3_CONNECT_PLUS_READ_S if destination.provider == "s3" else LOCAL_COPY_S
        return objects * per_object
    raise ValueError(f"unknown destination type {destination.type!r}")


def lease_for(destination, publication=None) -> float:
    budget = send_budget_s(destination, publication)
    return budget + max(MIN_MARGIN_S, 0.25 * budget)


class LeaseKeeper:
    """Renews a claim's lease in a background thread while the `with` block runs."""

    def __init__(
        self,
        engine: Engine,
        claim: ledger.Claim,
        lease_s: float,
        now_fn: Callable[[], datetime] | None,
        log: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.claim = claim
        self.lease_s = lease_s
        self.now_fn = now_fn
        self.log = log
        self.interval_s = max(0.05, lease_s / 3)
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claim.id[:8]}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = self.now_fn() if self.now_fn else None
            try:
                held = ledger.renew_lease(self.engine, self.claim.id, self.claim.attempt, self.lease_s, now)
            except Exception as exc:  # noqa: BLE001 - the send goes on; the next beat tries again
                self.log(f"delivery {self.claim.id}: lease renewal failed ({type(exc).__name__}); "
                         "trying again")
                continue
            if not held:
                self.lost = True
                self.log(f"delivery {self.claim.id}: lease lost during attempt {self.claim.attempt}")
                return
            self.renewals += 1

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
