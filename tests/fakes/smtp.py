"""FakeSmtpServer: a real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it
receives, for tests of Firebell's e-mail notifications.

Pointing a client at it
-----------------------
::

    async with FakeSmtpServer(starttls=True, auth=("firebell", "pw")) as smtp:
        await aiosmtplib.send(message, hostname=smtp.host, port=smtp.port,
                              start_tls=True, tls_context=smtp.client_tls_context(),
                              username="firebell", password="pw")
        (received,) = await smtp.wait_for_messages(1)
        assert received.message["Subject"] == "..."

Behaviour worth knowing
-----------------------
* aiosmtpd runs in its own thread and event loop (``Controller``), so the server
  answers even while the test's loop is blocked in a synchronous client.
* TLS uses a throw-away ``trustme`` CA; the certificate is valid for
  ``127.0.0.1`` and ``localhost``.  ``client_tls_context()`` trusts it,
  ``ca_pem_path`` is that CA as a file for clients that want a path.
* ``starttls=True`` offers STARTTLS on the plain port; ``implicit_tls=True`` is
  SMTPS (TLS from the first byte, like port 465).
* AUTH (LOGIN and PLAIN) with ``auth=(user, password)``.  aiosmtpd does not even
  advertise AUTH on an unencrypted session unless ``auth_require_tls=False``;
  here that flag defaults to "TLS is available", so a plain-text test server
  still accepts AUTH.  With ``auth`` set, AUTH is required before MAIL (530).
  Wrong credentials -> 535.
* ``refuse()`` stops listening (clients get "connection refused", open sessions
  are cut) and ``come_back()`` listens again on the same port; messages kept.
* ``tempfail_next(n, code)`` answers the next ``n`` messages, at the end of DATA,
  with a temporary error: 451 (message refused, connection kept) or 421 (refused
  and the server closes the connection, as RFC 5321 says).  Those attempts are
  kept in ``rejected``, never in ``messages``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_TEMPFAIL_TEXT = {
    421: "421 4.3.2 Service not available, closing transmission channel",
    451: "451 4.3.0 Requested action aborted: local error in processing",
}


@dataclass
class ReceivedMessage:
    """One message as the server got it (envelope and parsed content)."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    peer: Any
    tls: bool
    login: str | None  # the AUTH user, if the client authenticated
    received_at: float  # time.monotonic()


class FakeSmtpServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        starttls: bool = False,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        auth_require_tls: bool | None = None,
        server_hostname: str = "fake-smtp.test",
    ) -> None:
        self.host = host
        self.port = port
        self.server_hostname = server_hostname
        self.credentials = auth
        self.messages: list[ReceivedMessage] = []
        self.rejected: list[ReceivedMessage] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []  # (mechanism, login, accepted)
        self._starttls, self._require_starttls, self._implicit_tls = starttls, require_starttls, implicit_tls
        tls_available = starttls or implicit_tls
        self._auth_require_tls = tls_available if auth_require_tls is None else auth_require_tls
        self._lock = threading.Lock()  # the SMTP thread appends, the test thread reads
        self._tempfails: list[int] = []
        self._controller: Controller | None = None
        self.ca: trustme.CA | None = None
        self._server_tls: ssl.SSLContext | None = None
        self._ca_dir: tempfile.TemporaryDirectory[str] | None = None
        if tls_available:
            self._make_certificates()

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "smtps" if self._implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._controller is not None

    async def start(self) -> str:
        """Listen (a free port the first time, the same port afterwards); returns ``smtp://host:port``."""
        if self._controller is not None:
            return self.url
        if self.port == 0:
            self.port = _free_port(self.host)
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=self._server_tls if self._implicit_tls else None,
            server_hostname=self.server_hostname,
            tls_context=self._server_tls if self._starttls else None,
            require_starttls=self._require_starttls,
            authenticator=self._authenticate if self.credentials else None,
            auth_required=self.credentials is not None,
            auth_require_tls=self._auth_require_tls,
        )
        await asyncio.to_thread(controller.start)  # blocks until the thread serves
        self._controller = controller
        return self.url

    async def stop(self) -> None:
        await self._stop_listening()
        if self._ca_dir is not None:
            self._ca_dir.cleanup()
            self._ca_dir = None

    async def refuse(self) -> None:
        """Stop listening: connections are refused until ``come_back()``."""
        await self._stop_listening()

    async def come_back(self) -> None:
        await self.start()

    async def _stop_listening(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- TLS -------------------------------------------------------------------

    def _make_certificates(self) -> None:
        self.ca = trustme.CA()
        certificate = self.ca.issue_cert("127.0.0.1", "localhost", self.server_hostname)
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self._server_tls)

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (and checks the host name)."""
        if self.ca is None:
            raise RuntimeError("this FakeSmtpServer was created without TLS")
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    @property
    def ca_pem_path(self) -> Path:
        """The CA certificate as a PEM file (removed by stop())."""
        if self.ca is None:
            raise RuntimeError("this FakeSmtpServer was created without TLS")
        if self._ca_dir is None:
            self._ca_dir = tempfile.TemporaryDirectory(prefix="fake-smtp-ca-")
            self.ca.cert_pem.write_to_path(str(Path(self._ca_dir.name) / "ca.pem"))
        return Path(self._ca_dir.name) / "ca.pem"

    # -- faults -------------------------------------------------------------------

    def tempfail_next(self, n: int = 1, code: int = 451) -> None:
        """Answer the next ``n`` messages with a temporary error (451, or 421 + disconnect)."""
        if code not in _TEMPFAIL_TEXT:
            raise ValueError(f"code must be one of {sorted(_TEMPFAIL_TEXT)}")
        with self._lock:
            self._tempfails.extend([code] * n)

    # -- assertions helpers ---------------------------------------------------------

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until ``count`` messages were accepted; returns all accepted messages."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
                seen = len(self.messages)
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {seen} of {count} messages")
            await asyncio.sleep(0.01)

    # -- called from the SMTP thread ------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        password = auth_data.password.decode() if isinstance(auth_data, LoginPassword) else ""
        accepted = (login, password) == self.credentials
        with self._lock:
            self.auth_attempts.append((mechanism, login, accepted))
        # auth_data ends up in session.auth_data, where _receive() reads the login back.
        return AuthResult(success=accepted, handled=False, auth_data=login if accepted else None)

    def _receive(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        raw = raw if isinstance(raw, bytes) else raw.encode()
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=email.message_from_bytes(raw, policy=email.policy.default),  # type: ignore[arg-type]
            raw=raw,
            peer=session.peer,
            # session.ssl is only set by STARTTLS; the transport knows about implicit TLS too.
            tls=server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
            login=session.auth_data if session.authenticated else None,
            received_at=time.monotonic(),
        )
        with self._lock:
            code = self._tempfails.pop(0) if self._tempfails else None
            (self.rejected if code else self.messages).append(received)
        if code == 421 and server.transport is not None:
            # Close after the reply has been written (the reply is sent when we return).
            asyncio.get_running_loop().call_soon(server.transport.close)
        return _TEMPFAIL_TEXT[code] if code else "250 2.0.0 OK: queued"


class _Handler:
    """aiosmtpd handler: hands every message to the fake."""

    def __init__(self, fake: FakeSmtpServer) -> None:
        self._fake = fake

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._fake._receive(server, session, envelope)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
