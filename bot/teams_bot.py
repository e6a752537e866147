"""FirebellBot: the Teams surface. Turns activities into handler calls and handler replies into
activities; decides nothing about incidents itself."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

from botbuilder.core import CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ActivityTypes, AdaptiveCardInvokeResponse
from botbuilder.schema.teams import (MessagingExtensionActionResponse,
                                     TaskModuleContinueResponse, TaskModuleMessageResponse,
                                     TaskModuleTaskInfo)

from bot.app_token import NoAppToken
from bot.identity import Identity, teams_client, tenant_of
from cards.rca import PEOPLE_DATASET
from handlers.commands import (COMMANDS, ParseError, Reply, Where, handle_card_action,
                               parse_command, run_command)
from handlers.commands.from_message import COMMAND_ID, declare_from_message, message_form
from handlers.commands.look import help_reply
from handlers.context import Context
from handlers.effects.incident_cards import queue_reserved_card, remember_reply_card
from handlers.reads.people import MAX_CHOICES, search_people
from storage.db import DatabaseUnavailable

log = logging.getLogger("firebell.bot")
CARD = "application/vnd.microsoft.card.adaptive"
DB_DOWN = ("Firebell can't reach its database right now, so nothing was changed. "
           "Please try again in a minute.")


class FirebellBot(TeamsActivityHandler):
    def __init__(self, ctx: Context, identity: Identity, allowed_tenants: frozenset[str]):
        self.ctx = ctx
        self.identity = identity
        self.allowed_tenants = allowed_tenants

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        self.ctx.metrics.activities.labels(activity.type or "unknown").inc()
        if self.allowed_tenants and tenant_of(activity) not in self.allowed_tenants:
            log.warning("activity from tenant %r refused", tenant_of(activity))
            if activity.type == ActivityTypes.message:
                await turn_context.send_activity("Sorry, this Firebell serves another "
                                                 "organisation; I can't act on requests from "
                                                 "yours.")
            if activity.type == ActivityTypes.invoke:
                await _invoke_answer(turn_context, _message_body(
                    "This Firebell serves another organisation."))
            return
        await self.identity.remember_conversation(activity)
        await super().on_turn(turn_context)

    # -- messages -------------------------------------------------------------------------------
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and activity.value.get("verb"):
            return await self._submitted(turn_context)  # Action.Submit fallback of a card
        text = TurnContext.remove_recipient_mention(activity) or activity.text or ""
        try:
            verb, args = parse_command(text)
        except ParseError as exc:
            return await _send(turn_context, Reply.refuse(str(exc)))
        actor = await self.identity.actor(activity)
        where = self._where(activity, f"activity:{activity.conversation.id}:{activity.id}")
        try:
            if "person" in args:
                args = {**args, "mentioned": await self.identity.mentioned(activity)}
            reply = await run_command(self.ctx, actor, verb, args, where)
        except DatabaseUnavailable:
            return await _send(turn_context, Reply.refuse(DB_DOWN))
        if reply.repeated:
            return
        if not COMMANDS[verb].card_reply and reply.text:
            # Typed, most commands answer with text: the incident's card already lives in the
            # channel and updates in place.
            reply = Reply(text=reply.text, ok=reply.ok)
        await self._reply(turn_context, reply, where)

    async def _submitted(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        data = dict(activity.value)
        reply = await self._card_action(activity, str(data.pop("verb")), data)
        if reply.repeated:
            return
        if reply.ok and reply.incident_id and activity.reply_to_id:
            # The card updates in place through the outbox; just confirm.
            return await _send(turn_context, Reply(text=reply.text or "Done."))
        await self._reply(turn_context, replace(reply, live=False), self._where(activity))

    # -- card actions (Universal Actions) ---------------------------------------------------------
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name == "application/search":
            return await self._search(activity)
        if activity.name in MESSAGE_ACTIONS:
            return await self._message_action(activity)
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        action = (activity.value or {}).get("action") or {}
        reply = await self._card_action(activity, str(action.get("verb") or ""),
                                        action.get("data") or {})
        if reply.card is not None and reply.incident_id is None and \
                (reply.below or await self._from_live_card(activity)):
            # Not the incident's own card (the RCA form, a summary): a card answer would
            # replace the live incident card, and its next outbox update would overwrite the
            # answer. Post it as a new message in the thread instead.
            if await _send(turn_context, reply):
                return InvokeResponse(status=200, body=_message_body("Posted below."))
        # botbuilder-python 4.17.1 crashes when on_adaptive_card_invoke's response goes
        # through CloudAdapter ('dict' object has no attribute 'is_xml_model'): answer here.
        if reply.card is not None:
            body = AdaptiveCardInvokeResponse(status_code=200, type=CARD, value=reply.card)
        else:
            body = _message_body(reply.text or "Done.")
        return InvokeResponse(status=200, body=body)

    async def _search(self, activity: Activity) -> InvokeResponse:
        """Teams' typeahead on an Input.ChoiceSet with `choices.data` (the RCA form's owner
        picker): {dataset, queryText, queryOptions: {skip, top}} -> up to 15 {title, value}."""
        value = activity.value if isinstance(activity.value, dict) else {}
        if value.get("dataset") != PEOPLE_DATASET:
            return _search_error(400, "BadRequest", f"unknown dataset "
                                 f"{str(value.get('dataset'))[:40]!r}: Firebell answers "
                                 f"{PEOPLE_DATASET!r}")
        options = value.get("queryOptions") if isinstance(value.get("queryOptions"), dict) else {}
        skip, top = options.get("skip", 0), options.get("top", MAX_CHOICES)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                   for n in (skip, top)):
            return _search_error(400, "BadRequest", "queryOptions.skip and top must be "
                                 "whole numbers")
        try:
            async with self.ctx.db.read() as conn:
                found = await search_people(self.ctx, conn, tenant_of(activity),
                                            str(value.get("queryText") or "")[:100],
                                            skip=skip, top=top)
        except DatabaseUnavailable:
            return _search_error(503, "ServiceUnavailable", DB_DOWN)
        return InvokeResponse(status=200, body={
            "type": "application/vnd.microsoft.search.searchResponse",
            "value": {"results": [{"title": name, "value": email} for email, name in found]}})

    # -- "Declare incident" on a message (message-extension action) --------------------------------
    async def _message_action(self, activity: Activity) -> InvokeResponse:
        value = activity.value if isinstance(activity.value, dict) else {}
        if value.get("commandId") != COMMAND_ID:
            return _task_message(f"Firebell has no action `{str(value.get('commandId'))[:40]}`; "
                                 "use \"Declare incident\" on a message.")
        payload = value.get("messagePayload")
        if activity.name == "composeExtension/fetchTask":
            return _task_form(message_form(self.ctx, payload))
        actor = await self.identity.actor(activity)
        where = self._where(activity, f"activity:{activity.conversation.id}:{activity.id}")
        try:
            reply, form = await declare_from_message(self.ctx, actor, payload,
                                                     value.get("data"), where)
        except DatabaseUnavailable:
            return _task_message(DB_DOWN)
        if form is not None:
            return _task_form(form)
        if reply.ok and reply.incident_id:
            # The dialog answers with text; the card goes to this conversation through the
            # outbox (its slot was made by the declaration).
            await queue_reserved_card(self.ctx, reply.incident_id, where.conversation_id)
        return _task_message(reply.text or ("Already declared." if reply.repeated else "Done."))

    async def _from_live_card(self, activity: Activity) -> bool:
        try:
            return await self.identity.from_live_card(activity)
        except DatabaseUnavailable:
            return False

    async def _card_action(self, activity: Activity, verb: str, data: dict[str, Any]) -> Reply:
        actor = await self.identity.actor(activity)
        key = _action_key(verb, data, activity)
        try:
            return await handle_card_action(self.ctx, actor, verb, data,
                                            self._where(activity, key))
        except DatabaseUnavailable:
            return Reply.refuse(DB_DOWN)

    # -- conversation membership ---------------------------------------------------------------
    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        await self.identity.roster_changed(turn_context.activity)
        await super().on_conversation_update_activity(turn_context)

    async def on_installation_update(self, turn_context: TurnContext) -> None:
        await self.identity.roster_changed(turn_context.activity)

    async def on_teams_members_added(self, members_added, team_info, turn_context: TurnContext):
        activity = turn_context.activity
        bot_added = any(m.id == activity.recipient.id for m in members_added or [])
        if bot_added and activity.conversation.conversation_type in ("personal", None):
            welcome = help_reply(self.ctx, note="Hi! I'm Firebell. Here is what I can do.")
            await turn_context.send_activity(MessageFactory.attachment(
                CardFactory.adaptive_card(welcome.card)))

    # -- helpers ---------------------------------------------------------------------------------
    def _where(self, activity: Activity, event_key: str | None = None) -> Where:
        conversation_id, kind = self.identity.conversation_of(activity)
        return Where(conversation_id, kind, event_key=event_key,
                     typeahead=teams_client(activity))

    async def _reply(self, turn_context: TurnContext, reply: Reply, where: Where) -> None:
        sent = await _send(turn_context, reply)
        if not (reply.live and reply.incident_id):
            return
        activity = turn_context.activity
        if sent:
            await remember_reply_card(self.ctx, reply.incident_id, where.conversation_id,
                                      activity.conversation.id, sent)
        else:
            await queue_reserved_card(self.ctx, reply.incident_id, where.conversation_id)


async def _send(turn_context: TurnContext, reply: Reply) -> str | None:
    if reply.card is not None:
        message = MessageFactory.attachment(CardFactory.adaptive_card(reply.card))
        message.summary = (reply.text or "")[:200] or None
    else:
        message = MessageFactory.text(reply.text or "Done.")
        message.text_format = "plain"
    try:
        response = await turn_context.send_activity(message)
    except NoAppToken as exc:  # said once by the token's own warning; no traceback
        log.warning("reply not sent: %s", exc)
        return None
    except Exception:
        log.exception("could not send the reply")
        return None
    return response.id if response else None


MESSAGE_ACTIONS = ("composeExtension/fetchTask", "composeExtension/submitAction")


def _task_form(card: dict[str, Any]) -> InvokeResponse:
    info = TaskModuleTaskInfo(title="Declare incident", height="large", width="medium",
                              card=CardFactory.adaptive_card(card))
    return InvokeResponse(status=200, body=MessagingExtensionActionResponse(
        task=TaskModuleContinueResponse(value=info)))


def _task_message(text: str) -> InvokeResponse:
    """Closes the dialog with a message to the person who used the action."""
    return InvokeResponse(status=200, body=MessagingExtensionActionResponse(
        task=TaskModuleMessageResponse(value=text)))


async def _invoke_answer(turn_context: TurnContext, body: AdaptiveCardInvokeResponse) -> None:
    await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                              value=InvokeResponse(status=200, body=body)))


class _MessageInvokeResponse(AdaptiveCardInvokeResponse):
    # botbuilder's model types `value` as an object; the message response carries a string.
    _attribute_map = {**AdaptiveCardInvokeResponse._attribute_map,
                      "value": {"key": "value", "type": "str"}}


def _message_body(text: str) -> AdaptiveCardInvokeResponse:
    """A message instead of a card: Teams shows it and leaves the card as it was."""
    return _MessageInvokeResponse(status_code=200,
                                  type="application/vnd.microsoft.activity.message", value=text)


def _search_error(status: int, code: str, message: str) -> InvokeResponse:
    return InvokeResponse(status=status, body={"type": "application/vnd.microsoft.error",
                                               "value": {"code": code, "message": message}})


def _action_key(verb: str, data: dict[str, Any], activity: Activity) -> str:
    """Teams retries invokes: the same button on the same version of the card, with the same
    inputs, is one event. (Two different updates posted from one version of the card are two.)"""
    if data.get("incident") and data.get("version") is not None:
        extra = data.get("level") or ""
        inputs = {k: v for k, v in data.items() if k not in ("incident", "version", "level")}
        if inputs:
            extra += ":" + hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str)
                                          .encode()).hexdigest()[:16]
        return f"card:{verb}:{data['incident']}:{data['version']}:{extra}"
    return f"activity:{activity.conversation.id}:{activity.id}"
