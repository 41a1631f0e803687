"""Real network peers for tests: an SMTP server (aiosmtpd) and scripted HTTP servers."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- SMTP


class SMTPRecorder:
    """aiosmtpd handler storing every accepted envelope; refuses RCPT for `reject`."""

    def __init__(self) -> None:
        self.reject: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[bytes, bool]] = []
        self.password: bytes | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
             "data": bytes(envelope.original_content or envelope.content)}
        )
        return f"250 OK queued as Q{len(self.messages):04d}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = self.password is not None and auth_data.password == self.password
        self.logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=False)


@dataclass
class SMTPPeer:
    host: str
    port: int
    recorder: SMTPRecorder
    controller: Any = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.recorder.messages


@pytest.fixture
def smtp_factory():
    from aiosmtpd.controller import Controller

    started = []

    def start(**smtp_kwargs) -> SMTPPeer:
        recorder = SMTPRecorder()
        port = free_port()
        if smtp_kwargs.pop("auth", False):
            smtp_kwargs.update(authenticator=recorder.authenticate, auth_require_tls=False)
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **smtp_kwargs)
        controller.start()
        started.append(controller)
        return SMTPPeer("127.0.0.1", port, recorder, controller)

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_factory) -> SMTPPeer:
    return smtp_factory()


# ---------------------------------------------------------------- HTTP


@dataclass
class Recorded:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HTTPPeer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (200, {}, b'{"ok":true}')
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay_s: float = 0.0

    def respond(self, request: Recorded):
        with self.lock:
            self.requests.append(request)
            item = self.script.pop(0) if self.script else self.default
        if callable(item):
            item = item(request)
        status, headers, body = (list(item) + [{}, b""])[:3] if isinstance(item, tuple) else (item, {}, b"")
        return status, headers, body


@pytest.fixture
def http_factory():
    servers = []

    def start(script=None, default=None, delay_s: float = 0.0) -> HTTPPeer:
        peer_holder: dict[str, HTTPPeer] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer = peer_holder["peer"]
                rec = Recorded(time.monotonic(), self.command, self.path, dict(self.headers.items()), body)
                if peer.delay_s:
                    time.sleep(peer.delay_s)
                status, headers, payload = peer.respond(rec)
                if isinstance(payload, str):
                    payload = payload.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = _handle

            def log_message(self, *args):  # quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append(server)
        peer = HTTPPeer(url=f"http://127.0.0.1:{server.server_address[1]}/hook", script=list(script or []),
                        delay_s=delay_s)
        if default is not None:
            peer.default = default
        peer_holder["peer"] = peer
        return peer

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
