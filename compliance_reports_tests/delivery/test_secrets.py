"""No secret in logs or in the ledger, on success and on failure paths."""

from __future__ import annotations

import logging
import secrets as random_secrets

from compliance_reports.config.models import EmailDestination, WebhookDestination
from compliance_reports.delivery.alerts import notify_failure
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.delivery.errors import REDACTED
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry, ledger_texts, make_publication


def test_secrets_never_reach_logs_or_database(engine, smtp_factory, http_factory, tmp_path, monkeypatch, caplog, clock):
    smtp_pw = "smtp-" + random_secrets.token_hex(12)
    signing = "sign-" + random_secrets.token_hex(12)
    token = "tok-" + random_secrets.token_hex(12)
    monkeypatch.setenv("CR_SECRET_SMTP_PW", smtp_pw)
    monkeypatch.setenv("CR_SECRET_SIGNING", signing)
    monkeypatch.setenv("CR_SECRET_TOKEN", f"Bearer {token}")
    all_secrets = [smtp_pw, signing, token]

    good_smtp = smtp_factory(auth=True)
    good_smtp.recorder.password = smtp_pw.encode()
    bad_smtp = smtp_factory(auth=True)
    bad_smtp.recorder.password = b"something-else"

    def echo_headers(request):  # a hostile or careless server echoing credentials back
        # (the credential first: only 200 characters of a body are kept at all)
        sent = {k: v for k, v in request.headers.items() if k == "Authorization"} | dict(request.headers)
        return 500, {}, ("error; you sent " + repr(sent)).encode()

    good_hook = http_factory()
    bad_hook = http_factory(default=echo_headers)

    def mail(peer, name):
        return EmailDestination.model_validate({
            "type": "email", "name": name, "host": peer.host, "port": peer.port, "security": "none",
            "username": "mailer", "password_env": "CR_SECRET_SMTP_PW", "from": "reports@example.org",
            "to": ["ops@example.org"], "retry": fast_retry(max_attempts=2).model_dump()})

    def hook(peer, name):
        # hook-bad gives up almost at once, so that its failure is also alerted
        give_up_h = 1e-6 if name == "hook-bad" else 24
        return WebhookDestination.model_validate({
            "type": "webhook", "name": name, "url": peer.url, "signing_secret_env": "CR_SECRET_SIGNING",
            "headers_env": {"Authorization": "CR_SECRET_TOKEN"}, **LOCAL_RECEIVER,
            "retry": fast_retry(max_attempts=2, give_up_after_h=give_up_h).model_dump()})

    dests = [mail(good_smtp, "mail-ok"), mail(bad_smtp, "mail-bad"), hook(good_hook, "hook-ok"), hook(bad_hook, "hook-bad")]
    lines: list[str] = []
    pub = make_publication(tmp_path / "p")
    with caplog.at_level(logging.DEBUG):
        outcomes = deliver_publication(engine, pub, dests, now_fn=clock.now, sleep_fn=clock.sleep,
                                       log=lines.append, alert_destinations=[hook(good_hook, "hook-alert")])
        notify_failure(engine, [mail(good_smtp, "mail-ok")], {"report_id": "hipaa-weekly", "period": "2026-11-23"},
                       "ReportBuildError: audit database unreachable", now_fn=clock.now)
        deliver_publication(engine, pub, dests, now_fn=clock.now, sleep_fn=clock.sleep)  # default logger

    status = {o.destination: o.status for o in outcomes}
    assert status == {"mail-ok": "sent", "mail-bad": "dead", "hook-ok": "sent", "hook-bad": "dead"}
    assert good_hook.requests[0].headers["Authorization"] == f"Bearer {token}"  # it was really used
    bad_error = next(o.error for o in outcomes if o.destination == "hook-bad")
    assert REDACTED in bad_error and "535" in next(o.error for o in outcomes if o.destination == "mail-bad")

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("compliance_reports")]
    assert ours, "the default logger was used"
    texts = lines + ours + ledger_texts(engine)
    assert len(lines) >= 6 and any("hipaa-weekly" in t for t in ledger_texts(engine))
    leaks = [(s, t) for s in all_secrets for t in texts if s in t]
    assert leaks == []
    # the alert that carried the dead deliveries' errors went out without secrets too
    for req in good_hook.requests[1:]:
        assert not any(s.encode() in req.body for s in all_secrets)
