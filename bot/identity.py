"""Who is talking and where: conversation references, the roster cache, and the Actor of an
activity. The roster is fetched by an outbox job when the bot is installed or members change,
never on a request's path; an activity is mapped to a person through that cache, looked up in
the activity's own tenant (a roster fetched in another tenant says nothing about this one)."""
from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from handlers.context import Context
from handlers.roster import queue_roster_sync
from incidents.model import Actor
from storage import conversations, people

log = logging.getLogger("firebell.bot")


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

    async def remember_conversation(self, activity: Activity) -> None:
        if not activity.conversation or not activity.service_url:
            return
        conversation_id, kind = self.conversation_of(activity)
        key = (conversation_id, activity.service_url)
        if key in self._known:
            return
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference["conversation"] = {**(reference.get("conversation") or {}), "id": conversation_id}
        channel_data = _channel_data(activity)
        async with self.ctx.db.write() as conn:
            await conversations.remember(
                self.ctx.db, conn, conversation_id=conversation_id, kind=kind,
                service_url=activity.service_url, tenant_id=tenant_of(activity) or None,
                team_id=(channel_data.get("team") or {}).get("id"),
                name=(channel_data.get("channel") or {}).get("name") or activity.conversation.name,
                reference=reference, now=self.ctx.now())
            if kind != "channel":
                # A chat the bot was never "installed" into still has a roster worth knowing.
                await queue_roster_sync(self.ctx, conn, service_url=activity.service_url,
                                        roster_id=activity.conversation.id,
                                        tenant_id=tenant_of(activity))
        self._known.add(key)

    async def queue_roster_sync(self, activity: Activity) -> None:
        team = (_channel_data(activity).get("team") or {}).get("id")
        roster_id = team or (activity.conversation.id if activity.conversation else None)
        if not roster_id or not activity.service_url:
            return
        async with self.ctx.db.write() as conn:
            await queue_roster_sync(self.ctx, conn, service_url=activity.service_url,
                                    roster_id=roster_id, tenant_id=tenant_of(activity))
        self.ctx.wake_worker()

    async def actor(self, activity: Activity) -> Actor:
        user = activity.from_property
        name = (user.name if user else None) or "someone"
        aad = user.aad_object_id if user else None
        async with self.ctx.db.read() as conn:
            cached = await people.by_aad(conn, tenant_of(activity), aad)
        if cached is None and aad:
            # Someone the roster cache has not seen (joined since the last sync): fetch the
            # roster in the background; this request goes on without their e-mail.
            await self.queue_roster_sync(activity)
        email = cached["email"] if cached else None
        person = self.ctx.catalog.person(email)
        return Actor(person.name if person else (cached or {}).get("name") or name, "teams",
                     email=email, aad_object_id=aad)


def tenant_of(activity: Activity) -> str:
    """The activity's tenant ('' when it names none, as the Emulator's may not)."""
    return ((activity.conversation.tenant_id if activity.conversation else None)
            or (_channel_data(activity).get("tenant") or {}).get("id") or "")


def _channel_data(activity: Activity) -> dict[str, Any]:
    data = activity.channel_data
    if isinstance(data, dict):
        return data
    return data.serialize() if hasattr(data, "serialize") else {}
