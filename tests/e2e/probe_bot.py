"""Throwaway botbuilder bot used to build and prove the e2e harness (tests/e2e/harness.py).

It is NOT Firebell. It exercises every path Firebell needs in the Microsoft 365 Agents Playground:

* text message            -> replies with an Adaptive Card 1.5 (Action.Execute ack/resolve/set_level,
                             Input.ChoiceSet ``level``, Input.Text ``note``)
* invoke ``adaptiveCard/action`` verb ``ack``       -> invoke response with an updated card (refresh in place)
* invoke ``adaptiveCard/action`` verb ``resolve``   -> ``update_activity`` on the card's message through the
                                                       connector + invoke response with an updated card
* invoke ``adaptiveCard/action`` verb ``set_level`` -> invoke response card echoing the inputs
* text ``boom``            -> a card whose only button (verb ``boom``) makes the invoke fail (HTTP 500)
* text ``proactive``      -> a new card posted through ``adapter.continue_conversation`` (serviceUrl of the
                             conversation = the Playground's own ``/_connector``)
* ``POST /api/probe/webhook[?target=channel]`` (any body) -> posts a proactive card "Webhook received ..." into
                             the last conversation the bot saw (``target=channel``: as a new top-level channel post);
                             answers 202 with JSON {bytes, sha256, content_type, x_probe}
* ``GET /api/probe/activities`` -> JSON list of the raw activities received (for asserting ids / user fields)

Anonymous CloudAdapter (empty MicrosoftAppId) because the Playground sends no JWT.
Run: ``python tests/e2e/probe_bot.py --port 3978``
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import sys
from typing import Any

from aiohttp import web
from botbuilder.core import ActivityHandler, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, Attachment, ConversationReference
from msrest.serialization import Model

log = logging.getLogger("probe_bot")

CARD_CT = "application/vnd.microsoft.card.adaptive"


class _Config:
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


class InvokeBody(Model):
    """Body of an ``adaptiveCard/action`` invoke response.

    botbuilder 4.17.1 + CloudAdapter pitfalls: CloudAdapter.process() runs serializer_helper() on the body, so
    a plain dict raises "'dict' object has no attribute 'is_xml_model'", and the schema's
    AdaptiveCardInvokeResponse types ``value`` as ``{object}`` (dict only), so a message response (``value`` is
    a string) fails to serialise. This model types ``value`` as ``object`` and works for both.
    """

    _attribute_map = {
        "status_code": {"key": "statusCode", "type": "int"},
        "type": {"key": "type", "type": "str"},
        "value": {"key": "value", "type": "object"},
    }

    def __init__(self, *, status_code: int = 200, type: str = CARD_CT, value: Any = None, **kwargs):  # noqa: A002
        super().__init__(**kwargs)
        self.status_code = status_code
        self.type = type
        self.value = value


def incident_card(status: str = "Triggered", extra: str | None = None, incident: str = "INC-1") -> dict:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": f"Incident {incident}", "weight": "Bolder", "size": "Medium", "id": "title"},
        {"type": "TextBlock", "text": f"Status: {status}", "id": "status", "wrap": True},
    ]
    if extra:
        body.append({"type": "TextBlock", "text": extra, "id": "extra", "wrap": True})
    body += [
        {
            "type": "Input.ChoiceSet",
            "id": "level",
            "label": "Level",
            "value": "SEV3",
            "choices": [
                {"title": "SEV1 - critical", "value": "SEV1"},
                {"title": "SEV2 - major", "value": "SEV2"},
                {"title": "SEV3 - minor", "value": "SEV3"},
            ],
        },
        {"type": "Input.Text", "id": "note", "label": "Note", "placeholder": "Add a note"},
    ]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": body,
        "actions": [
            {"type": "Action.Execute", "title": "Acknowledge", "verb": "ack", "id": "ack",
             "data": {"incident": incident}},
            {"type": "Action.Execute", "title": "Resolve", "verb": "resolve", "id": "resolve",
             "data": {"incident": incident}},
            {"type": "Action.Execute", "title": "Set level", "verb": "set_level", "id": "set_level",
             "data": {"incident": incident}},
            {"type": "Action.Execute", "title": "Deny", "verb": "deny", "id": "deny", "data": {"incident": incident}},
        ],
    }


def simple_card(text: str) -> dict:
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


def card_activity(card: dict) -> Activity:
    return MessageFactory.attachment(Attachment(content_type=CARD_CT, content=card))


class ProbeBot(ActivityHandler):
    def __init__(self, adapter: CloudAdapter):
        self.adapter = adapter
        self.received: list[dict] = []
        self.last_reference: ConversationReference | None = None

    async def on_turn(self, turn_context: TurnContext):
        self.last_reference = TurnContext.get_conversation_reference(turn_context.activity)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext):
        text = TurnContext.remove_recipient_mention(turn_context.activity) or turn_context.activity.text or ""
        text = text.strip()
        user = turn_context.activity.from_property
        email = "?"
        try:  # the Playground's /_connector answers GET .../members/{id} from its config (email, UPN, names)
            member = await TeamsInfo.get_member(turn_context, user.id)
            email = member.email or member.user_principal_name or "?"
        except Exception as exc:  # noqa: BLE001 - probe: report, do not crash
            log.warning("get_member failed: %r", exc)
        if text.lower() == "proactive":
            reference = TurnContext.get_conversation_reference(turn_context.activity)
            await turn_context.send_activity("OK, posting proactively")
            await self.post_proactive(reference, simple_card("Proactive hello from probe"))
            return
        if text.lower() == "boom":
            card = simple_card("Boom card")
            card["actions"] = [{"type": "Action.Execute", "title": "Boom", "verb": "boom"}]
            await turn_context.send_activity(card_activity(card))
            return
        card = incident_card(extra=f"Declared by {user.name if user else '?'} <{email}>: {text}")
        await turn_context.send_activity(card_activity(card))

    async def post_proactive(self, reference: ConversationReference, card: dict) -> None:
        async def _send(ctx: TurnContext):
            await ctx.send_activity(card_activity(card))

        await self.adapter.continue_conversation(reference, _send, bot_app_id=_Config.APP_ID)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        act = turn_context.activity
        if act.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        value = act.value or {}
        action = value.get("action") or {}
        verb = action.get("verb")
        data = action.get("data") or {}
        who = act.from_property.name if act.from_property else "?"
        if verb == "ack":
            card = incident_card("Acknowledged", extra=f"Acknowledged by {who}", incident=data.get("incident", "?"))
        elif verb == "resolve":
            card = incident_card("Resolved", extra=f"Resolved by {who} (update_activity)",
                                 incident=data.get("incident", "?"))
            if act.reply_to_id:
                upd = card_activity(copy.deepcopy(card))
                upd.id = act.reply_to_id
                try:
                    await turn_context.update_activity(upd)
                except Exception as exc:  # noqa: BLE001 - probe: report, do not crash
                    log.warning("update_activity failed: %r", exc)
                    card = incident_card("Resolved", extra=f"update_activity failed: {exc!r}")
        elif verb == "deny":
            # A message-type invoke response: Teams/Playground show the text next to the card, card unchanged.
            return InvokeResponse(
                status=200,
                body=InvokeBody(type="application/vnd.microsoft.activity.message", value="Denied by probe"),
            )
        elif verb == "set_level":
            card = incident_card(
                "Level changed",
                extra=f"Level set to {data.get('level')} by {who}; note: {data.get('note') or '-'}",
                incident=data.get("incident", "?"),
            )
        elif verb == "boom":
            raise RuntimeError("probe: deliberate invoke failure")
        else:
            card = simple_card(f"Unknown verb {verb!r}")
        # The body MUST be a msrest Model (see InvokeBody). That is also why on_adaptive_card_invoke cannot be
        # used: ActivityHandler pre-serialises its result to a dict and CloudAdapter then fails on that dict.
        return InvokeResponse(status=200, body=InvokeBody(value=card))


def build_app() -> web.Application:
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(_Config()))
    bot = ProbeBot(adapter)

    async def on_error(context: TurnContext, error: Exception):
        log.exception("turn error: %r", error)
        print(f"probe_bot turn error: {error!r}", file=sys.stderr, flush=True)

    adapter.on_turn_error = on_error

    async def messages(request: web.Request) -> web.Response:
        try:
            bot.received.append(json.loads(await request.read()))  # raw JSON exactly as the Playground sent it
        except ValueError:
            pass
        return await adapter.process(request, bot)

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        info = {
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "content_type": request.headers.get("Content-Type", ""),
            "x_probe": request.headers.get("X-Probe", ""),
        }
        if bot.last_reference is None:
            return web.json_response({"error": "no conversation yet", **info}, status=409)
        reference = copy.copy(bot.last_reference)
        if request.query.get("target") == "channel" and reference.conversation is not None:
            # post a NEW top-level post in the channel: conversation id without the ";messageid=..." thread suffix
            conv = copy.copy(reference.conversation)
            conv.id = conv.id.split(";messageid=")[0]
            reference.conversation = conv
            reference.activity_id = None
        await bot.post_proactive(
            reference,
            simple_card(f"Webhook received: {info['bytes']} bytes, X-Probe={info['x_probe']}"),
        )
        return web.json_response(info, status=202)

    async def activities(_request: web.Request) -> web.Response:
        return web.json_response(bot.received)

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_post("/api/probe/webhook", webhook)
    app.router.add_get("/api/probe/activities", activities)
    app.router.add_get("/healthz", health)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3978)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    web.run_app(build_app(), host=args.host, port=args.port, print=lambda *a: print(*a, flush=True))


if __name__ == "__main__":
    main()
