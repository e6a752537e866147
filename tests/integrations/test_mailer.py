"""Mailer against FakeSmtpServer (a real aiosmtpd server on 127.0.0.1)."""
from __future__ import annotations

import ssl

import pytest

from integrations.errors import PermanentFailure, TemporaryFailure
from integrations.mailer import Email, Mailer
from tests.fakes.smtp import FakeSmtpServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # enough of a PNG for the transport
SENDER = "Firebell <firebell@example.com>"


def incident_email(**overrides) -> Email:
    fields = dict(to=["oncall@example.com"], cc=["lead@example.com"],
                  subject="[INC-7] Checkout down", text="Checkout is down.\nSeverity: high",
                  html='<p>Checkout is down.</p><img src="cid:mttr-chart">',
                  inline_images=[("mttr-chart", PNG)], message_id="INC-7.opened@firebell.example")
    return Email(**{**fields, **overrides})


def plain_mailer(smtp: FakeSmtpServer, **overrides) -> Mailer:
    return Mailer(smtp.host, smtp.port, **{"sender": SENDER, "starttls": False, "timeout": 2, **overrides})


async def test_text_html_and_inline_image_in_the_right_mime_shape():
    async with FakeSmtpServer() as smtp:
        message_id = await plain_mailer(smtp).send(incident_email())
        (received,) = await smtp.wait_for_messages(1)
    assert message_id == "<INC-7.opened@firebell.example>"
    msg = received.message
    assert msg["Message-ID"] == message_id and msg["Date"]
    assert received.mail_from == "firebell@example.com"
    assert received.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    assert (msg["To"], msg["Cc"]) == ("oncall@example.com", "lead@example.com")

    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.get_payload()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == "Checkout is down.\nSeverity: high\n"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html" and 'src="cid:mttr-chart"' in html.get_content()
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<mttr-chart>" and image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


async def test_text_only_and_html_without_images():
    async with FakeSmtpServer() as smtp:
        mailer = plain_mailer(smtp)
        await mailer.send(incident_email(html=None, inline_images=(), cc=()))
        await mailer.send(incident_email(inline_images=(), message_id="<two@firebell.example>"))
        text_only, alternative = await smtp.wait_for_messages(2)
    assert text_only.message.get_content_type() == "text/plain"
    assert [p.get_content_type() for p in alternative.message.get_payload()] == ["text/plain", "text/html"]
    assert alternative.message["Message-ID"] == "<two@firebell.example>"
    with pytest.raises(ValueError):
        await plain_mailer(smtp).send(incident_email(html=None))


async def test_non_ascii_subject_and_names_are_encoded():
    async with FakeSmtpServer() as smtp:
        email = incident_email(to=[("Zoë Müller", "zoe@example.com"), "Łukasz Nowak <lukasz@example.com>"],
                               subject="[INC-7] Störung: Kasse ✓ — 決済")
        await Mailer(smtp.host, smtp.port, sender="Feuerglocke Ü <firebell@example.com>",
                     starttls=False).send(email)
        (received,) = await smtp.wait_for_messages(1)
    headers = received.raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # RFC 2047 encoded-words, no raw 8-bit in headers
    assert b"=?utf-8?" in headers
    msg = received.message
    assert msg["Subject"] == "[INC-7] Störung: Kasse ✓ — 決済"
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [
        ("Zoë Müller", "zoe@example.com"), ("Łukasz Nowak", "lukasz@example.com")]
    assert msg["From"].addresses[0].display_name == "Feuerglocke Ü"
    assert received.rcpt_tos == ["zoe@example.com", "lukasz@example.com", "lead@example.com"]


async def test_starttls_with_the_fake_ca_and_auth():
    async with FakeSmtpServer(starttls=True, auth=("firebell", "s3cret")) as smtp:
        mailer = Mailer(smtp.host, smtp.port, sender=SENDER, username="firebell", password="s3cret",
                        starttls=True, tls_context=smtp.client_tls_context(), timeout=2)
        await mailer.send(incident_email())
        (received,) = await smtp.wait_for_messages(1)
    assert (received.tls, received.login) == (True, "firebell")


async def test_wrong_password_is_permanent_and_secret_stays_out():
    async with FakeSmtpServer(starttls=True, auth=("firebell", "s3cret")) as smtp:
        mailer = Mailer(smtp.host, smtp.port, sender=SENDER, username="firebell", password="wrong-pw-9",
                        tls_context=smtp.client_tls_context(), timeout=2)
        with pytest.raises(PermanentFailure, match="SMTP_PASSWORD") as caught:
            await mailer.send(incident_email())
    assert "wrong-pw-9" not in str(caught.value)


async def test_untrusted_certificate_and_missing_starttls_are_permanent():
    async with FakeSmtpServer(starttls=True) as smtp:
        with pytest.raises(PermanentFailure, match="not trusted"):
            await Mailer(smtp.host, smtp.port, sender=SENDER, timeout=2,
                         tls_context=ssl.create_default_context()).send(incident_email())
    async with FakeSmtpServer() as smtp:  # no STARTTLS offered: never fall back to plain text
        with pytest.raises(PermanentFailure, match="STARTTLS"):
            await Mailer(smtp.host, smtp.port, sender=SENDER, timeout=2).send(incident_email())
        assert smtp.messages == []


async def test_refused_for_a_while_then_back():
    async with FakeSmtpServer() as smtp:
        mailer = plain_mailer(smtp)
        await smtp.refuse()
        with pytest.raises(TemporaryFailure):
            await mailer.send(incident_email())
        await smtp.come_back()
        await mailer.send(incident_email())
        assert len(await smtp.wait_for_messages(1)) == 1


@pytest.mark.parametrize("code", [451, 421])
async def test_temporary_smtp_replies_then_the_same_message_again(code):
    async with FakeSmtpServer() as smtp:
        mailer = plain_mailer(smtp)
        smtp.tempfail_next(1, code=code)
        with pytest.raises(TemporaryFailure, match=str(code)):
            await mailer.send(incident_email())
        await mailer.send(incident_email())
        (accepted,) = await smtp.wait_for_messages(1)
    assert smtp.rejected[0].message["Message-ID"] == accepted.message["Message-ID"]


def refuse_recipients(smtp: FakeSmtpServer, answers: dict[str, str]) -> None:
    """Give the running fake a RCPT hook (aiosmtpd reads hooks per connection)."""
    async def handle_RCPT(server, session, envelope, address, options):
        if address in answers:
            return answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"
    smtp._controller.handler.handle_RCPT = handle_RCPT


async def test_recipient_refusals():
    async with FakeSmtpServer() as smtp:
        mailer = plain_mailer(smtp)
        refuse_recipients(smtp, {"oncall@example.com": "550 5.1.1 No such user",
                                 "lead@example.com": "550 5.1.1 No such user"})
        with pytest.raises(PermanentFailure, match="every recipient refused"):
            await mailer.send(incident_email())

        refuse_recipients(smtp, {"oncall@example.com": "452 4.2.2 Mailbox full",
                                 "lead@example.com": "550 5.1.1 No such user"})
        with pytest.raises(TemporaryFailure, match="Mailbox full"):
            await mailer.send(incident_email())

        refuse_recipients(smtp, {"lead@example.com": "550 5.1.1 No such user"})
        await mailer.send(incident_email())  # one of two refused: delivered to the other
        (received,) = await smtp.wait_for_messages(1)
    assert received.rcpt_tos == ["oncall@example.com"]
