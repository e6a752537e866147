"""The seam to the Bot Framework SDK: building the CloudAdapter from settings.

Every botbuilder import lives in bot/, so replacing the archived SDK (4.17.1 is its last
release; the Microsoft 365 Agents SDK succeeds it) touches this folder only.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (CloudAdapter, ConfigurationBotFrameworkAuthentication,
                                            ConfigurationServiceClientCredentialFactory)
from botbuilder.schema import ActivityTypes

from bot import signing_keys
from bot.app_token import AppTokenCredentials, AppTokens, NoAppToken

log = logging.getLogger("firebell.bot")

# Activities CloudAdapter.send_activities keeps to itself (no call to the Bot Connector).
_NOT_SENT = (ActivityTypes.invoke_response, "delay")


class ServiceUrls(Protocol):
    """Which Bot Connector addresses Firebell may call (integrations/service_urls.py, built in
    app.py and shared with the outbox's Teams connector)."""

    def refusal(self, url: str | None) -> str | None: ...


@dataclass(frozen=True)
class BotSettings:
    """The bot's app registration (MicrosoftAppId and friends); no app id = anonymous."""
    # Bot Framework auth endpoints; overridable so tests can stand in for Microsoft's.
    endpoints: dict[str, Any] = field(default_factory=dict)
    app_id: str = ""
    app_password: str = ""
    app_type: str = "MultiTenant"
    tenant_id: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.app_id


class _Configuration:
    """The attribute bag ConfigurationBotFrameworkAuthentication reads."""

    def __init__(self, s: BotSettings):
        self.APP_ID = s.app_id
        self.APP_PASSWORD = s.app_password
        self.APP_TYPE = s.app_type or "MultiTenant"
        self.APP_TENANTID = s.tenant_id
        for key, value in s.endpoints.items():
            setattr(self, key, value)


class FirebellAdapter(CloudAdapter):
    """CloudAdapter whose failed authentication is always a 401, and which runs no turn for an
    activity whose serviceUrl Firebell must not call (403).

    botbuilder 4.17.1 answers a missing header, an expired token, an unknown key or a forged
    signature with a 500 (its validators raise AttributeError, jwt errors, IndexError...); only
    some failures become PermissionError. Every failure to authenticate is the sender's
    problem, so each becomes PermissionError, which CloudAdapter answers with 401. The turn
    never runs for an unauthenticated request.

    Authentication comes first (an unauthenticated request stays a 401 whatever it names);
    then the serviceUrl, which every reply of the turn and every later card post would go to.

    A reply finding no token for the bot yet (just after start-up, or once one ran out) waits
    briefly for the one being fetched, on the loop (bot/app_token.py). An invoke's answer goes
    back in the HTTP response and needs no token: it never waits.
    """

    def __init__(self, authentication, service_urls: ServiceUrls):
        super().__init__(authentication)
        self.service_urls = service_urls

    async def process_activity(self, auth_header_or_authenticate_request_result, activity, logic):
        result = auth_header_or_authenticate_request_result
        if isinstance(result, str) or result is None:
            try:
                result = await self.bot_framework_authentication.authenticate_request(
                    activity, result or "")
            except Exception as exc:
                log.warning("refused an activity: %s: %s", type(exc).__name__, str(exc)[:200])
                raise PermissionError("unauthorized") from exc
        refused = self.service_urls.refusal(activity.service_url)
        if refused:
            log.warning("refused an activity: %s", refused)
            raise web.HTTPForbidden(content_type="application/json", text=json.dumps(
                {"error": f"Firebell does not answer this activity: {refused}"}))
        return await super().process_activity(result, activity, logic)

    async def send_activities(self, context: TurnContext, activities):
        if any(a.type not in _NOT_SENT for a in activities):
            await self._token_ready(context)
        return await super().send_activities(context, activities)

    async def update_activity(self, context: TurnContext, activity):
        await self._token_ready(context)
        return await super().update_activity(context, activity)

    async def delete_activity(self, context: TurnContext, reference):
        await self._token_ready(context)
        return await super().delete_activity(context, reference)

    async def _token_ready(self, context: TurnContext) -> None:
        client = context.turn_state.get(self.BOT_CONNECTOR_CLIENT_KEY)
        credentials = getattr(getattr(client, "config", None), "credentials", None)
        if isinstance(credentials, AppTokenCredentials):
            await credentials.ready()


def create_adapter(settings: BotSettings, service_urls: ServiceUrls) -> CloudAdapter:
    signing_keys.install()  # before the first request: keys are never fetched on the loop
    configuration = _Configuration(settings)
    # The replies' token is never fetched on the loop either, and is fetched from now on.
    tokens = AppTokens(ConfigurationServiceClientCredentialFactory(configuration))
    authentication = ConfigurationBotFrameworkAuthentication(configuration,
                                                             credentials_factory=tokens)
    if not settings.anonymous:
        tokens.start(authentication, settings.app_id)
    adapter = FirebellAdapter(authentication, service_urls)

    async def on_error(turn_context: TurnContext, error: Exception) -> None:
        if isinstance(error, NoAppToken):  # the login endpoint's trouble, logged where it is
            log.warning("a reply was not sent: %s", error)
            return  # an apology would need the same token
        log.exception("unhandled error in a bot turn", exc_info=error)
        if turn_context.activity.type == ActivityTypes.message:
            try:
                await turn_context.send_activity(
                    "Sorry, something went wrong on Firebell's side; "
                    "please try again in a minute or check `incident show`.")
            except Exception:  # the reply path itself may be what failed
                log.warning("could not tell the user about the error")

    adapter.on_turn_error = on_error
    return adapter
