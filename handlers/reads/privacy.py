"""Who sees a private incident, and where. Its members (the declarer and the service's
responders) and admins see it, and only where nobody else reads along: in a personal chat with
Firebell, or in its own private chat. In a channel or any other group chat it does not exist by
name: lists leave it out, and acting on it is refused there."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.model import Actor, Incident
from storage import conversations, members
from storage import postmortems as pm_store


@dataclass(frozen=True)
class Viewer:
    """Whose incidents a list may name: `email`'s private ones too (None: public only), or all
    of them for an admin."""
    email: str | None = None
    admin: bool = False

    def clause(self):
        return members.visible_to(self.email, admin=self.admin)


PUBLIC = Viewer()


def is_admin(ctx: Context, actor: Actor) -> bool:
    return bool(actor.email) and actor.email.lower() in ctx.policy.admins


def viewer(ctx: Context, actor: Actor, kind: str) -> Viewer:
    """A list in a personal chat may name the private incidents its reader may see; one in a
    channel or group chat is read by others too, so it names none."""
    if kind != "personal" or not actor.email:
        return PUBLIC
    return Viewer(actor.email.lower(), is_admin(ctx, actor))


async def refusal(ctx: Context, conn: AsyncConnection, incident: Incident, actor: Actor,
                  conversation_id: str, kind: str) -> str | None:
    """Why `actor` may not see or act on `incident` here (None: they may)."""
    if not incident.private:
        return None
    member = is_admin(ctx, actor) or await members.is_member(conn, incident.id, actor.email)
    room = await pm_store.war_room(conn, incident.id)
    in_its_chat = room is not None and room["chat_id"] == conversation_id
    if member and (kind == "personal" or in_its_chat):
        return None
    where = ("" if not member else
             " Use it in its private chat or in a personal chat with Firebell, where nobody "
             "else reads along.")
    return (f"{incident.ref} is a private incident: only its members (its declarer and its "
            f"service's responders) and admins may see it or act on it.{where}")


async def home_of(conn: AsyncConnection, incident_id: int, team: str | None,
                  private: bool) -> str | None:
    """Where messages about an incident go (reminders, role mentions, the close summary): its
    team's channel, or for a private incident its private chat (once Firebell is in it), never
    a channel."""
    if not private:
        return await conversations.channel_for(conn, team)
    room = await pm_store.war_room(conn, incident_id)
    if room and room.get("chat_id") and await conversations.get(conn, room["chat_id"]):
        return room["chat_id"]
    return None
