"""Self-test of FakeSmtpServer with aiosmtplib as the client."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib
import pytest

from tests.fakes.smtp import FakeSmtpServer


def notification(subject: str = "[INC-7] Database down") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "firebell@example.com"
    message["To"] = "oncall@example.com"
    message["Subject"] = subject
    message.set_content("Severity: high\nOpened by Ana")
    return message


async def test_plain_delivery_is_parsed_with_its_envelope() -> None:
    async with FakeSmtpServer() as smtp:
        assert smtp.url == f"smtp://127.0.0.1:{smtp.port}"
        await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port,
                              recipients=["oncall@example.com", "lead@example.com"])
        (received,) = await smtp.wait_for_messages(1)
        assert received.mail_from == "firebell@example.com"
        assert received.rcpt_tos == ["oncall@example.com", "lead@example.com"]
        assert received.message["Subject"] == "[INC-7] Database down"
        assert received.message.get_content().startswith("Severity: high")
        assert (received.tls, received.login) == (False, None)


async def test_starttls_with_the_test_ca() -> None:
    async with FakeSmtpServer(starttls=True) as smtp:
        await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port,
                              start_tls=True, tls_context=smtp.client_tls_context())
        await aiosmtplib.send(notification("second"), hostname=smtp.host, port=smtp.port,
                              start_tls=True, cert_bundle=str(smtp.ca_pem_path))
        received = await smtp.wait_for_messages(2)
        assert [m.tls for m in received] == [True, True]


async def test_starttls_is_refused_by_a_client_that_does_not_trust_the_ca() -> None:
    async with FakeSmtpServer(starttls=True) as smtp:
        with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):
            await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port,
                                  start_tls=True, tls_context=ssl.create_default_context())
        assert smtp.messages == []


async def test_auth_over_starttls() -> None:
    async with FakeSmtpServer(starttls=True, require_starttls=True, auth=("firebell", "pw")) as smtp:
        options = dict(hostname=smtp.host, port=smtp.port, start_tls=True, tls_context=smtp.client_tls_context())
        await aiosmtplib.send(notification(), username="firebell", password="pw", **options)
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as wrong:
            await aiosmtplib.send(notification(), username="firebell", password="nope", **options)
        assert wrong.value.code == 535
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as anonymous:
            await aiosmtplib.send(notification(), **options)
        assert anonymous.value.code == 530
        (received,) = await smtp.wait_for_messages(1)
        assert (received.login, received.tls) == ("firebell", True)
        # aiosmtplib tries each advertised mechanism (PLAIN, LOGIN) before giving up.
        assert [(mech, ok) for mech, _, ok in smtp.auth_attempts] == [
            ("PLAIN", True), ("PLAIN", False), ("LOGIN", False)]


# aiosmtpd warns (UserWarning, from its own thread) about AUTH without TLS; intended here.
PLAIN_TEXT_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@PLAIN_TEXT_AUTH
@pytest.mark.parametrize("mechanism", ["auth_login", "auth_plain"])
async def test_auth_login_and_plain_without_tls(mechanism: str) -> None:
    async with FakeSmtpServer(auth=("firebell", "pw")) as smtp:
        async with aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, start_tls=False) as client:
            await client.ehlo()
            await getattr(client, mechanism)("firebell", "pw")
            await client.send_message(notification())
        (received,) = await smtp.wait_for_messages(1)
        assert received.login == "firebell"
        assert smtp.auth_attempts[0][0] == mechanism.split("_")[1].upper()


async def test_aiosmtpd_hides_auth_on_plain_text_when_told_to_require_tls() -> None:
    async with FakeSmtpServer(auth=("firebell", "pw"), auth_require_tls=True) as smtp:
        with pytest.raises(aiosmtplib.SMTPException, match="AUTH"):
            await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port,
                                  username="firebell", password="pw")


async def test_implicit_tls() -> None:
    async with FakeSmtpServer(implicit_tls=True) as smtp:
        assert smtp.url.startswith("smtps://")
        await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port,
                              use_tls=True, tls_context=smtp.client_tls_context())
        assert (await smtp.wait_for_messages(1))[0].tls


async def test_refused_then_back_on_the_same_port() -> None:
    async with FakeSmtpServer() as smtp:
        await aiosmtplib.send(notification("before"), hostname=smtp.host, port=smtp.port)
        port = smtp.port
        await smtp.refuse()
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(notification("during"), hostname=smtp.host, port=port, timeout=2)
        await smtp.come_back()
        assert smtp.port == port
        await aiosmtplib.send(notification("after"), hostname=smtp.host, port=port)
        received = await smtp.wait_for_messages(2)
        assert [m.message["Subject"] for m in received] == ["before", "after"]


async def test_temporary_errors_for_the_next_messages() -> None:
    async with FakeSmtpServer() as smtp:
        smtp.tempfail_next(2, code=451)
        for _ in range(2):
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await aiosmtplib.send(notification(), hostname=smtp.host, port=smtp.port)
            assert refused.value.code == 451
        await aiosmtplib.send(notification("third try"), hostname=smtp.host, port=smtp.port)
        assert len(smtp.rejected) == 2
        assert [m.message["Subject"] for m in await smtp.wait_for_messages(1)] == ["third try"]


async def test_421_refuses_the_message_and_closes_the_connection() -> None:
    async with FakeSmtpServer() as smtp:
        smtp.tempfail_next(code=421)
        async with aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port) as client:
            with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                await client.send_message(notification())
            assert refused.value.code == 421
            assert not client.is_connected
        assert smtp.messages == [] and len(smtp.rejected) == 1


async def test_wait_for_messages_times_out() -> None:
    async with FakeSmtpServer() as smtp:
        with pytest.raises(TimeoutError):
            await smtp.wait_for_messages(1, timeout=0.1)


async def test_several_servers_at_once() -> None:
    async with FakeSmtpServer() as one, FakeSmtpServer(starttls=True) as two:
        assert one.port != two.port
        await aiosmtplib.send(notification("one"), hostname=one.host, port=one.port)
        assert two.messages == [] and len(await one.wait_for_messages(1)) == 1
