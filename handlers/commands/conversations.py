"""Who is talking and where: the conversations Firebell has heard from (their references, to post
into them later), the Teams roster cache, and the person behind an activity. The roster is
fetched by an outbox job when Firebell is installed or members change, never on a request's
path; an activity is mapped to a person through that cache, looked up in the activity's own
tenant (a roster fetched in another tenant says nothing about this one)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.context import Context
from handlers.effects.roster import queue_roster_sync
from incidents.model import Actor
from storage import conversations, people


@dataclass(frozen=True)
class Seen:
    """Where an activity came from, as the Teams surface reads it."""
    conversation_id: str              # the channel itself in a channel (not the reply thread)
    kind: str                         # channel | personal | groupChat
    service_url: str
    tenant_id: str                    # '' when the activity names none
    roster_id: str | None             # the team (in a channel) or the chat whose roster it is
    team_id: str | None = None
    name: str | None = None
    reference: dict[str, Any] | None = None   # the Bot Framework conversation reference


async def remember_conversation(ctx: Context, seen: Seen) -> None:
    async with ctx.db.write() as conn:
        await conversations.remember(
            ctx.db, conn, conversation_id=seen.conversation_id, kind=seen.kind,
            service_url=seen.service_url, tenant_id=seen.tenant_id or None,
            team_id=seen.team_id, name=seen.name, reference=seen.reference, now=ctx.now())
        if seen.kind != "channel" and seen.roster_id:
            # A chat Firebell was never "installed" into still has a roster worth knowing.
            await queue_roster_sync(ctx, conn, service_url=seen.service_url,
                                    roster_id=seen.roster_id, tenant_id=seen.tenant_id)


async def roster_changed(ctx: Context, seen: Seen) -> None:
    """Installed, or members came or went: fetch the roster again (in the background)."""
    if not seen.roster_id or not seen.service_url:
        return
    async with ctx.db.write() as conn:
        await queue_roster_sync(ctx, conn, service_url=seen.service_url,
                                roster_id=seen.roster_id, tenant_id=seen.tenant_id)
    ctx.wake_worker()


async def who_is(ctx: Context, seen: Seen, aad_object_id: str | None, name: str | None) -> Actor:
    """The person behind an activity: their catalog name and e-mail when the roster of this
    tenant knows them; else just the name Teams sent, with no rights beyond anyone's."""
    async with ctx.db.read() as conn:
        cached = await people.by_aad(conn, seen.tenant_id, aad_object_id)
    if cached is None and aad_object_id:
        # Someone the roster cache has not seen (joined since the last sync): fetch the
        # roster in the background; this request goes on without their e-mail.
        await roster_changed(ctx, seen)
    email = cached["email"] if cached else None
    person = ctx.catalog.person(email)
    label = person.name if person else (cached or {}).get("name") or name or "someone"
    return Actor(label, "teams", email=email, aad_object_id=aad_object_id)


async def mentioned_email(ctx: Context, seen: Seen, teams_user_ids: list[str]) -> str | None:
    """The e-mail of the first person @mentioned whom this tenant's roster knows. A mention's
    text is a display name ("Raman, Priya (Ext)") that need not match the catalog; its id does."""
    async with ctx.db.read() as conn:
        for user_id in teams_user_ids[:5]:
            row = await people.by_teams_id(conn, seen.tenant_id, user_id)
            if row and row.get("email"):
                return row["email"]
    return None


async def is_live_card(ctx: Context, conversation_id: str, activity_id: str) -> bool:
    """Is this message a live incident card (the one Firebell keeps updating)?"""
    async with ctx.db.read() as conn:
        return await conversations.find_card_by_activity(conn, conversation_id,
                                                         activity_id) is not None
