"""War rooms: a Teams group chat per service-down root incident (Microsoft Graph), with the
on-call, the week's DBA and DevOps standbys, stakeholders and incident commanders; Firebell is
installed in it and posts the incident card there. Children join their root's room."""
from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.incident_cards import post_card_to, refresh_cards
from handlers.effects.registry import Clients, effect
from handlers.reads.oncall import who_is_on_call
from incidents.catalog import war_room_members
from incidents.model import FIREBELL, Incident
from integrations.errors import TemporaryFailure
from storage import conversations, outbox
from storage import incidents as store
from storage import postmortems as pm_store
from storage.outbox import Job
from storage.timeline import note

TOPIC_LIMIT = 200


async def queue_war_room(ctx: Context, conn: AsyncConnection, incident: Incident) -> None:
    """A root incident whose level calls for a war room (its routing rule's, else the
    catalog's `levels: war_room`) gets one (once). A private incident's private chat is its war
    room (handlers/effects/private_chat.py): no second, open one."""
    if incident.private:
        return
    if ctx.configured.graph and ctx.catalog.needs_war_room(incident.service, incident.team,
                                                           incident.level):
        await outbox.enqueue(ctx.db, conn, "war_room", now=ctx.now(), incident_id=incident.id,
                             once_key=f"war_room:{incident.id}")


async def queue_join(ctx: Context, conn: AsyncConnection, child: Incident,
                     root: Incident) -> None:
    """A child joins its root's war room (its service's people are added) instead of getting
    one of its own. Only a root has one: a duplicate of an incident that is itself linked (a
    cascade child) has no room to join."""
    if ctx.configured.graph and _has_room(ctx, root):
        await outbox.enqueue(ctx.db, conn, "war_room_join", now=ctx.now(), incident_id=root.id,
                             payload={"child_id": child.id},
                             once_key=f"war_room_join:{root.id}:{child.id}")


def topic_of(incident: Incident) -> str:
    topic = f"{incident.ref} {incident.service or 'unknown service'}: {incident.title}"
    return topic if len(topic) <= TOPIC_LIMIT else topic[: TOPIC_LIMIT - 1] + "…"


@effect("war_room", system="graph", shown_as="War room")
async def open_war_room(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    async with ctx.db.read() as conn:
        incident = await store.get(conn, job.incident_id)
        if incident is None or incident.parent_id is not None:
            return {"skipped": "linked to another incident: it uses its root's war room"}
        service_url = await service_url_for(conn, incident)
        oncall = await who_is_on_call(ctx, conn)
    members = war_room_members(ctx.catalog, incident.service, incident.commander, ctx.now(),
                               oncall)
    return await open_chat(ctx, clients, incident, topic_of(incident), members, service_url,
                           kind="war_room", what="war room")


async def open_chat(ctx: Context, clients: Clients, incident: Incident, topic: str,
                    members: list[str], service_url: str | None, *, kind: str,
                    what: str) -> dict[str, Any]:
    """A group chat for the incident (keyed by its topic: a retry finds the chat made before),
    with Firebell in it, the card posted, and who is in it on the timeline. The war room and a
    private incident's chat are both this."""
    chat = await clients.graph.ensure_war_room(topic, members)
    if ctx.policy.teams_app_id:
        await clients.graph.ensure_app_installed(chat.id, ctx.policy.teams_app_id)
    async with ctx.db.write() as conn:
        await pm_store.save_war_room(ctx.db, conn, incident.id, chat_id=chat.id,
                                     web_url=chat.web_url, topic=topic, members=members,
                                     now=ctx.now())
        posted = await post_card_in_chat(ctx, conn, incident, chat.id, service_url)
        names = ", ".join(ctx.catalog.display_name(m) or m for m in members)
        await note(conn, incident.id, kind=kind, actor=FIREBELL, at=ctx.now(),
                   text=f"{what} opened with {names}"
                        + ("" if posted else " (card not posted: Firebell has not heard from "
                                             "Teams in this tenant yet)"))
        await refresh_cards(ctx, conn, incident.id)
    ctx.wake_worker()
    return {"chat_id": chat.id, "created": chat.created, "members": members}


@effect("war_room_join", system="graph", shown_as="War room")
async def join_war_room(ctx: Context, clients: Clients, job: Job) -> dict[str, Any]:
    child_id = job.payload["child_id"]
    async with ctx.db.read() as conn:
        room = await pm_store.war_room(conn, job.incident_id)
        child = await store.get(conn, child_id)
        oncall = await who_is_on_call(ctx, conn)
    if child is None or child.parent_id != job.incident_id:
        return {"skipped": "no longer linked"}
    if room is None:
        if await _room_expected(ctx, job.incident_id):
            raise TemporaryFailure("the root's war room is not open yet")
        return {"skipped": "the root has no war room"}
    people = war_room_members(ctx.catalog, child.service, child.commander, ctx.now(), oncall)
    added = await clients.graph.add_members(room["chat_id"], people)
    async with ctx.db.write() as conn:
        if added.added:
            who = ", ".join(ctx.catalog.display_name(m) or m for m in added.added)
            text = f"{who} joined the war room for {child.ref} ({child.service})"
            await note(conn, job.incident_id, kind="war_room", actor=FIREBELL, at=ctx.now(),
                       text=text)
            await note(conn, child.id, kind="war_room", actor=FIREBELL, at=ctx.now(), text=text)
    return {"added": added.added, "unknown": added.unknown}


async def _room_expected(ctx: Context, root_id: int) -> bool:
    async with ctx.db.read() as conn:
        root = await store.get(conn, root_id)
    return bool(root and _has_room(ctx, root))


def _has_room(ctx: Context, incident: Incident) -> bool:
    """A root at a level its routing rule (else `levels: war_room`) gives a war room."""
    return incident.parent_id is None and \
        ctx.catalog.needs_war_room(incident.service, incident.team, incident.level)


async def service_url_for(conn: AsyncConnection, incident: Incident) -> str | None:
    """Teams' service URL for this tenant, learned from any conversation we have seen."""
    channel = await conversations.channel_for(conn, incident.team)
    conv = await conversations.get(conn, channel) if channel else None
    return conv["service_url"] if conv else await conversations.any_service_url(conn)


async def post_card_in_chat(ctx: Context, conn: AsyncConnection, incident: Incident,
                             chat_id: str, service_url: str | None) -> bool:
    if not service_url:
        return False
    await conversations.remember(ctx.db, conn, conversation_id=chat_id, kind="groupChat",
                                 service_url=service_url, tenant_id=None, team_id=None,
                                 name=topic_of(incident),
                                 reference={"conversation": {"id": chat_id, "isGroup": True},
                                            "serviceUrl": service_url},
                                 now=ctx.now())
    return await post_card_to(ctx, conn, incident, chat_id) or True

