"""The outbound address guard, redirects and what is kept of a response, against real receivers."""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest

from compliance_reports.artifacts.s3 import make_s3_client
from compliance_reports.config import store as config_store
from compliance_reports.config.models import StorageDestination, WebhookDestination
from compliance_reports.delivery import ledger, outbound
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.delivery.errors import REDACTED, response_excerpt
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry, ledger_texts


def hook(url: str, name: str = "siem", **extra) -> WebhookDestination:
    return WebhookDestination.model_validate(
        {"type": "webhook", "name": name, "url": url, "retry": fast_retry().model_dump(), **extra})


def deliver(engine, publication, dests):
    return deliver_publication(engine, publication, dests, sleep_fn=lambda s: None)


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::7f00:1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("::ffff:169.254.169.254", "link-local"),
    ("10.0.0.5", "private"), ("172.16.3.4", "private"), ("192.168.1.1", "private"), ("fd00::5", "private"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("100.64.0.1", "not globally routable"), ("198.18.0.1", "private"),
])
def test_internal_addresses_are_classified(address, reason):
    assert outbound.address_class(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert outbound.address_class(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook", "http://2130706433/hook",
    "http://0177.0.0.1/hook", "http://0x7f.1/hook", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook", "http://[fe80::1]/hook", "http://224.0.0.1/hook",
])
def test_url_problem_names_the_address_class(url):
    problem = outbound.url_problem(url)
    assert problem is not None and "allow_private_network" in problem
    assert any(word in problem for word in ("loopback", "link-local", "private", "multicast", "unspecified"))


def test_a_host_that_does_not_resolve_here_is_left_to_the_send_time_check():
    assert outbound.url_problem("https://hooks.invalid/in") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_webhook_to_loopback_is_refused_at_send(engine, http_factory, publication, host):
    peer = http_factory()
    port = peer.url.split(":")[2].split("/")[0]
    (outcome,) = deliver(engine, publication, [hook(f"http://{host}:{port}/hook")])
    assert outcome.status == "dead" and outcome.attempts == 1  # not retried: a configuration problem
    assert "loopback" in outcome.error and "allow_private_network" in outcome.error
    assert peer.requests == []


def test_allow_private_network_lets_a_local_receiver_through(engine, http_factory, publication):
    peer = http_factory()
    port = peer.url.split(":")[2].split("/")[0]
    (outcome,) = deliver(engine, publication, [hook(f"http://localhost:{port}/hook", **LOCAL_RECEIVER)])
    assert outcome.status == "sent" and len(peer.requests) == 1


def test_dns_rebinding_gains_nothing(engine, http_factory, publication, monkeypatch):
    """The name resolves to a public address when applied, to loopback when sent."""
    peer = http_factory()
    port = int(peer.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    dest = hook(f"http://rebind.example:{port}/hook")
    config_store.apply_destinations(engine, [dest])  # accepted: it resolved to a public address
    (outcome,) = deliver(engine, publication, [dest])
    assert outcome.status == "dead" and "loopback" in outcome.error
    assert peer.requests == []


def test_the_connection_dials_the_checked_address(http_factory, monkeypatch):
    """The guarded connection does not resolve twice: it connects to what it checked."""
    peer = http_factory()
    port = int(peer.url.split(":")[2].split("/")[0])
    checked = []

    def fake_checked(host, port_, what="host"):
        checked.append(host)
        return ["127.0.0.1"]  # as if the check had approved this address for the name

    monkeypatch.setattr(outbound, "checked_addresses", fake_checked)
    with outbound.http_session(allow_private_network=False) as session:
        response = session.post(f"http://pinned.invalid:{port}/hook", data=b"{}", timeout=5)
    assert response.status_code == 200 and checked == ["pinned.invalid"]
    assert peer.requests[0].headers["Host"] == f"pinned.invalid:{port}"


def test_redirects_are_not_followed(engine, http_factory, publication):
    target = http_factory()
    peer = http_factory(default=(302, {"Location": target.url}, b"moved"))
    (outcome,) = deliver(engine, publication, [hook(peer.url, **LOCAL_RECEIVER)])
    assert outcome.status == "dead" and outcome.attempts == 1
    assert "HTTP 302 redirect not followed" in outcome.error
    assert len(peer.requests) == 1 and target.requests == []


def test_s3_endpoint_on_loopback_is_refused_at_send(engine, moto_s3_endpoint, publication, monkeypatch):
    monkeypatch.setenv("CR_TEST_S3_KEY", "testing")
    monkeypatch.setenv("CR_TEST_S3_SECRET", "testing")
    bucket = f"guarded-{uuid.uuid4().hex[:8]}"
    make_s3_client(endpoint_url=moto_s3_endpoint).create_bucket(Bucket=bucket)
    data = {"type": "storage", "name": "bucket", "provider": "s3", "bucket": bucket,
            "endpoint_url": moto_s3_endpoint, "access_key_id_env": "CR_TEST_S3_KEY",
            "secret_access_key_env": "CR_TEST_S3_SECRET", "retry": fast_retry().model_dump()}
    (outcome,) = deliver(engine, publication, [StorageDestination.model_validate(data)])
    assert outcome.status == "dead" and "loopback" in outcome.error and "endpoint_url" in outcome.error
    assert make_s3_client(endpoint_url=moto_s3_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    (allowed,) = deliver(engine, publication,
                         [StorageDestination.model_validate({**data, "name": "bucket2", **LOCAL_RECEIVER})])
    assert allowed.status == "sent"


def test_only_a_short_redacted_excerpt_of_the_response_is_kept(db, http_factory, publication, caplog):
    token = "tok_" + uuid.uuid4().hex
    body = (f'{{"status":"accepted","access_token":"{token}","debug":"Authorization: Bearer {token}",'
            f'"password=hunter2-{token[:6]}","padding":"{"x" * 5000}"}}').encode()
    peer = http_factory(default=(200, {}, body))
    lines: list[str] = []
    (outcome,) = deliver_publication(db, publication, [hook(peer.url, **LOCAL_RECEIVER)],
                                     sleep_fn=lambda s: None, log=lines.append)
    assert outcome.status == "sent"
    response = ledger.get_row(db, outcome.row_id)["provider_response"]
    assert response.startswith("HTTP 200: ") and len(response) <= len("HTTP 200: ") + 200 + 3
    assert '"status":"accepted"' in response and REDACTED in response
    texts = ledger_texts(db) + lines
    assert not any(token in t or "hunter2" in t for t in texts)
    assert not any("x" * 300 in t for t in texts)


def test_failed_responses_keep_the_excerpt_only(db, http_factory, publication, clock):
    peer = http_factory(default=(500, {}, b"internal error; api_key=sk_live_0123456789abcdef " + b"y" * 400))
    (outcome,) = deliver_publication(db, publication, [hook(peer.url, **LOCAL_RECEIVER)],
                                     now_fn=clock.now, sleep_fn=clock.sleep)
    row = ledger.get_row(db, outcome.row_id)
    # a 500 stays failed for the sweep until the give-up time
    assert row["status"] == "failed" and row["last_error"].startswith("HTTP 500: internal error; api_key=")
    assert "sk_live" not in row["last_error"] and len(row["last_error"]) <= len("HTTP 500: ") + 203


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ("password=hunter2&next=1", "hunter2"),
    ('{"client_secret": "s3cr3t-value"}', "s3cr3t-value"),
    ("X-Auth-Token: 0123abcd", "0123abcd"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("session 4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e", "4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e"),
])
def test_response_excerpt_redacts_what_looks_like_a_credential(text, secret):
    kept = response_excerpt(text)
    assert secret not in kept and REDACTED in kept


def test_response_excerpt_redacts_before_cutting():
    text = "x" * 190 + " token=" + "abcdefghij" * 3
    kept = response_excerpt(text)
    assert "abcdefghij"[:3] not in kept.split("token=")[-1] and len(kept) <= 203


def _self_signed(folder):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver.test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("receiver.test")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_tls_is_verified_against_the_url_host_while_the_checked_address_is_dialled(tmp_path, monkeypatch):
    import http.server
    import ssl
    import threading

    import requests

    cert, key = _self_signed(tmp_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        monkeypatch.setattr(outbound, "checked_addresses", lambda host, port_, what="host": ["127.0.0.1"])
        with outbound.http_session(allow_private_network=False) as session:
            ok = session.post(f"https://receiver.test:{port}/hook", data=b"{}", verify=str(cert), timeout=5)
            assert ok.status_code == 200
            with pytest.raises(requests.exceptions.SSLError):  # the certificate does not name this host
                session.post(f"https://other.test:{port}/hook", data=b"{}", verify=str(cert), timeout=5)
    finally:
        server.shutdown()
        server.server_close()
