"""Who is talking and where, read off an activity: the conversation (the channel itself, not
the reply thread), its reference for posting later, the tenant, and the person, through the
roster cache of handlers/commands/conversations.py. Teams-specific reading only; what is stored
and looked up is the handler's."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from handlers.commands.conversations import (Seen, is_live_card, mentioned_email,
                                             remember_conversation, roster_changed, who_is)
from handlers.context import Context
from incidents.model import Actor


class Identity:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._known: set[tuple[str, str]] = set()  # (conversation, serviceUrl) saved already

    def conversation_of(self, activity: Activity) -> tuple[str, str]:
        """(conversation id, kind). In a channel, the channel itself (not the reply thread):
        subscriptions and cards belong to the channel."""
        kind = (activity.conversation.conversation_type if activity.conversation else None) or (
            "groupChat" if activity.conversation and activity.conversation.is_group else "personal")
        channel = (_channel_data(activity).get("channel") or {}).get("id")
        if kind == "channel":
            return channel or activity.conversation.id.split(";messageid=")[0], kind
        return activity.conversation.id, kind

    def seen(self, activity: Activity) -> Seen:
        conversation_id, kind = self.conversation_of(activity)
        channel_data = _channel_data(activity)
        team = (channel_data.get("team") or {}).get("id")
        chat = activity.conversation.id if activity.conversation else None
        return Seen(conversation_id=conversation_id, kind=kind,
                    service_url=activity.service_url or "", tenant_id=tenant_of(activity),
                    roster_id=team or chat, team_id=team,
                    name=(channel_data.get("channel") or {}).get("name")
                    or (activity.conversation.name if activity.conversation else None))

    async def remember_conversation(self, activity: Activity) -> None:
        if not activity.conversation or not activity.service_url:
            return
        seen = self.seen(activity)
        key = (seen.conversation_id, seen.service_url)
        if key in self._known:
            return
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference["conversation"] = {**(reference.get("conversation") or {}),
                                     "id": seen.conversation_id}
        await remember_conversation(self.ctx, replace(seen, reference=reference))
        self._known.add(key)

    async def roster_changed(self, activity: Activity) -> None:
        await roster_changed(self.ctx, self.seen(activity))

    async def actor(self, activity: Activity) -> Actor:
        user = activity.from_property
        return await who_is(self.ctx, self.seen(activity),
                            user.aad_object_id if user else None, user.name if user else None)

    async def mentioned(self, activity: Activity) -> str | None:
        """The e-mail of the person @mentioned in a message (not Firebell itself), if known."""
        bot_id = activity.recipient.id if activity.recipient else None
        # botbuilder keeps a mention's fields in the entity's additional_properties
        # (bot/activity_shape.py has checked `mentioned.id` is a string).
        ids = [m.additional_properties["mentioned"]["id"]
               for m in TurnContext.get_mentions(activity)]
        ids = [i for i in ids if i != bot_id]
        return await mentioned_email(self.ctx, self.seen(activity), ids) if ids else None

    async def from_live_card(self, activity: Activity) -> bool:
        """Was the clicked card a live incident card (the message Firebell keeps updating)?"""
        if not activity.reply_to_id:
            return False
        conversation_id, _ = self.conversation_of(activity)
        return await is_live_card(self.ctx, conversation_id, activity.reply_to_id)


def teams_client(activity: Activity) -> bool:
    """Does the activity come from a Teams client (desktop, web, mobile)? They name their
    platform in a clientInfo entity, come through the Bot Connector (https), and honour what
    Teams adds to Adaptive Cards (the owner picker's typeahead). Other hosts do not: Web Chat
    and the Emulator name no platform, and the Agents Playground, which looks like Teams on
    the web, is served over plain http and answers no `application/search`."""
    if activity.channel_id != "msteams" or not (activity.service_url or "").startswith("https://"):
        return False
    for entity in activity.entities or []:
        props = entity.serialize() if hasattr(entity, "serialize") else entity
        props = {**props, **(getattr(entity, "additional_properties", None) or {})}
        if props.get("type") == "clientInfo" and props.get("platform"):
            return True
    return False


def tenant_of(activity: Activity) -> str:
    """The activity's tenant ('' when it names none, as the Emulator's may not)."""
    return ((activity.conversation.tenant_id if activity.conversation else None)
            or (_channel_data(activity).get("tenant") or {}).get("id") or "")


def _channel_data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    if isinstance(data, dict):
        return data
    return data.serialize() if hasattr(data, "serialize") else {}
