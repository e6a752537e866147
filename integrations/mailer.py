"""SMTP transport for incident e-mails: MIME assembly and delivery with aiosmtplib.

What the message says is rendered elsewhere; this module only builds the envelope around it:
multipart/alternative (plain text + HTML), the HTML inside multipart/related when it shows inline
PNG images (referenced as `cid:<id>`).

SMTP cannot be asked "did you already get this?", so a re-send after a crash can deliver a second
copy. The caller therefore passes a deterministic Message-ID (e.g. `<INC-7.digest.3@firebell>`):
the copy is recognisably the same message, and mail clients and archives fold it away.
"""
from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses

import aiosmtplib
from aiosmtplib import (SMTPConnectError, SMTPException, SMTPRecipientsRefused,
                        SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError)

from integrations.errors import PermanentFailure, TemporaryFailure

log = logging.getLogger("firebell.mailer")

Recipient = str | tuple[str, str]  # "Zoë <zoe@example.com>", "zoe@example.com" or (name, address)


@dataclass(frozen=True)
class Email:
    to: Sequence[Recipient]
    subject: str
    text: str
    message_id: str  # deterministic per message, "<local@domain>" (brackets added if missing)
    html: str | None = None
    cc: Sequence[Recipient] = ()
    inline_images: Sequence[tuple[str, bytes]] = field(default_factory=tuple)  # (cid, PNG bytes)


class Mailer:
    def __init__(self, host: str, port: int = 587, *, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = True, implicit_tls: bool = False,
                 timeout: float = 15.0, tls_context: ssl.SSLContext | None = None):
        self._host, self._port = host, port
        self._sender = sender
        self._username, self._password = username or None, password or None
        # True: STARTTLS or fail (never fall back to plain text); False: no TLS at all (a relay
        # on localhost). Not aiosmtplib's "opportunistic" default, which hides a downgrade.
        self._starttls = starttls and not implicit_tls
        self._implicit_tls = implicit_tls
        self._timeout = timeout
        self._tls_context = tls_context

    async def send(self, email: Email) -> str:
        """Deliver the message; returns its Message-ID."""
        message = build_message(email, self._sender)
        recipients = [a.addr_spec for a in _addresses([*email.to, *email.cc])]
        if not recipients:
            raise PermanentFailure(f"e-mail {message['Message-ID']}: no recipients")
        refused = await self._deliver(message, recipients)
        if refused:
            # The others have it: re-sending would duplicate it for them, so report and go on.
            log.warning("e-mail %s refused for %s", message["Message-ID"],
                        ", ".join(f"{r} ({code})" for r, code in refused.items()))
        return str(message["Message-ID"])

    async def _deliver(self, message: EmailMessage, recipients: list[str]) -> dict[str, int]:
        what = f"e-mail {message['Message-ID']} via {self._host}:{self._port}"
        try:
            errors, _ = await aiosmtplib.send(
                message, sender=_addresses([self._sender])[0].addr_spec, recipients=recipients,
                hostname=self._host, port=self._port, username=self._username,
                password=self._password, start_tls=self._starttls, use_tls=self._implicit_tls,
                tls_context=self._tls_context, timeout=self._timeout)
        except SMTPRecipientsRefused as exc:
            raise _all_refused(exc, what) from None
        except SMTPResponseException as exc:
            raise _refused(exc, what) from None
        except (SMTPConnectError, SMTPServerDisconnected, SMTPTimeoutError) as exc:
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError):  # implicit TLS
                raise _untrusted(exc.__cause__, what) from None
            raise TemporaryFailure(f"{what}: {exc}") from None
        except SMTPException as exc:  # STARTTLS or AUTH not offered: the setup, not the moment
            raise PermanentFailure(f"{what}: {exc}: check SMTP_STARTTLS / SMTP_PORT") from None
        except ssl.SSLCertVerificationError as exc:  # STARTTLS
            raise _untrusted(exc, what) from None
        except OSError as exc:
            raise TemporaryFailure(f"{what}: {type(exc).__name__} {exc}") from None
        return {rcpt: resp.code for rcpt, resp in errors.items() if resp.code >= 400}


def build_message(email: Email, sender: str) -> EmailMessage:
    """The MIME message: text, or text + HTML alternatives, the HTML with its inline images."""
    if email.inline_images and not email.html:
        raise ValueError("inline images need an HTML part that references them")
    message = EmailMessage()
    message["From"] = _addresses([sender])
    message["To"] = _addresses(email.to)
    if email.cc:
        message["Cc"] = _addresses(email.cc)
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = _bracketed(email.message_id)
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
        html_part = message.get_payload()[1]
        for cid, png in email.inline_images:
            html_part.add_related(png, maintype="image", subtype="png", cid=_bracketed(cid),
                                  disposition="inline", filename=f"{cid.strip('<>')}.png")
    return message


def _addresses(recipients: Sequence[Recipient]) -> list[Address]:
    """Headers from plain strings or (name, address) pairs; non-ASCII names are encoded by the
    e-mail policy when the message is written out."""
    parsed = []
    for item in [recipients] if isinstance(recipients, str) else recipients:
        pairs = [item] if isinstance(item, tuple) else getaddresses([item])
        for name, addr in pairs:
            if "@" not in addr:
                raise PermanentFailure(f"not an e-mail address: {addr!r}")
            local, _, domain = addr.rpartition("@")
            parsed.append(Address(display_name=name, username=local, domain=domain))
    return parsed


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def _untrusted(exc: ssl.SSLCertVerificationError, what: str) -> PermanentFailure:
    return PermanentFailure(f"{what}: the server's certificate is not trusted "
                            f"({exc.verify_message}): check SMTP_HOST and the CA bundle")


def _refused(exc: SMTPResponseException, what: str) -> Exception:
    detail = f"{what}: SMTP {exc.code} {exc.message}"
    if 400 <= exc.code < 500:  # 421 closing, 450/451 try later, 452 full, 454 AUTH unavailable
        return TemporaryFailure(detail)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return PermanentFailure(f"{detail}: check SMTP_USERNAME and SMTP_PASSWORD")
    if exc.code == 530:
        return PermanentFailure(
            f"{detail}: the server wants AUTH: set SMTP_USERNAME and SMTP_PASSWORD")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return PermanentFailure(f"{detail}: check SMTP_FROM")
    return PermanentFailure(detail)


def _all_refused(exc: SMTPRecipientsRefused, what: str) -> Exception:
    codes = [r.code for r in exc.recipients]
    detail = f"{what}: every recipient refused: " + ", ".join(
        f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
    if any(400 <= code < 500 for code in codes):
        return TemporaryFailure(detail)  # at least one may take it later; nobody has it yet
    return PermanentFailure(detail)
