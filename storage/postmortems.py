"""Postmortems, their action items, and war rooms."""
from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import action_items as ai
from storage.schema import postmortems as pm
from storage.schema import war_rooms as wr

RCA_FIELDS = ("summary", "customer_impact", "impact_minutes", "detection", "timeline",
              "root_cause", "trigger", "resolution", "went_well", "went_badly", "lessons")


async def get(conn: AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(pm).where(pm.c.incident_id == incident_id))).mappings().first()
    return dict(row) if row else None


async def create(db, conn: AsyncConnection, incident_id: int, *, owner: str | None,
                 timeline: str, now: datetime, timeline_through: int | None = None) -> bool:
    """Start the postmortem (draft, timeline pre-filled, its own link token); False if it
    already exists."""
    stmt = db.insert(pm).values(incident_id=incident_id, status="draft", owner=owner,
                                timeline=timeline, timeline_through=timeline_through,
                                reminders=0, created_at=now, updated_at=now,
                                link_token=_link_token())
    return (await conn.execute(stmt.on_conflict_do_nothing(
        index_elements=[pm.c.incident_id]))).rowcount == 1


def _link_token() -> str:
    """192 random bits, URL-safe: the postmortem page's address is its only key."""
    return secrets.token_urlsafe(24)


async def by_link_token(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(pm).where(pm.c.link_token == token))).mappings().first()
    return dict(row) if row else None


async def new_link_token(conn: AsyncConnection, incident_id: int) -> str:
    """Replace the postmortem's link token: the old address stops working with this commit."""
    token = _link_token()
    await conn.execute(update(pm).where(pm.c.incident_id == incident_id)
                       .values(link_token=token))
    return token


async def links_of(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """{incident id: {incident_id, link_token}} for those of `ids` that have a postmortem
    (enough for handlers.postmortems.page_url)."""
    if not ids:
        return {}
    q = select(pm.c.incident_id, pm.c.link_token).where(pm.c.incident_id.in_(list(ids)))
    return {r["incident_id"]: dict(r) for r in (await conn.execute(q)).mappings()}


async def refill_timeline(conn: AsyncConnection, incident_id: int, *, timeline: str,
                          through: int | None) -> None:
    """Firebell's own refill of the RCA timeline: not a save by a person (no status change)."""
    await conn.execute(update(pm).where(pm.c.incident_id == incident_id)
                       .values(timeline=timeline, timeline_through=through))


async def save(conn: AsyncConnection, incident_id: int, fields: dict[str, Any], *,
               complete: bool, now: datetime) -> None:
    values = {k: v for k, v in fields.items()
              if k in RCA_FIELDS or k in ("owner", "timeline_through")}
    # A waived postmortem written afterwards stays waived until it is complete.
    draft = case((pm.c.waived_at.is_not(None), "waived"), else_="draft")
    values.update(updated_at=now, status="complete" if complete else draft,
                  completed_at=now if complete else None)
    await conn.execute(update(pm).where(pm.c.incident_id == incident_id).values(**values))


async def waive(db, conn: AsyncConnection, incident_id: int, *, by: str, reason: str,
                timeline: str, now: datetime) -> None:
    """Record the waiver (starting the postmortem row if there was none: the waiver lives on
    it). Status "waived": reminders and overdue lists look at drafts only."""
    waiver = dict(status="waived", waived_at=now, waived_by=by, waiver_reason=reason,
                  updated_at=now)
    stmt = db.insert(pm).values(incident_id=incident_id, timeline=timeline, reminders=0,
                                created_at=now, link_token=_link_token(), **waiver)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[pm.c.incident_id],
                                                  set_=waiver))


async def set_fields(conn: AsyncConnection, incident_id: int, **values: Any) -> None:
    await conn.execute(update(pm).where(pm.c.incident_id == incident_id).values(**values))


async def action_items(conn: AsyncConnection, incident_id: int) -> list[dict[str, Any]]:
    q = select(ai).where(ai.c.incident_id == incident_id).order_by(ai.c.position, ai.c.id)
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def action_item(conn: AsyncConnection, item_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(ai).where(ai.c.id == item_id))).mappings().first()
    return dict(row) if row else None


async def add_action_item(conn: AsyncConnection, incident_id: int, *, position: int, title: str,
                          owner: str | None, due_date: date | None, now: datetime) -> int:
    stmt = ai.insert().values(incident_id=incident_id, position=position, title=title,
                              owner=owner, due_date=due_date, jira_done=False, created_at=now,
                              updated_at=now).returning(ai.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def update_action_item(conn: AsyncConnection, item_id: int, **values: Any) -> None:
    await conn.execute(update(ai).where(ai.c.id == item_id).values(**values))


async def remove_action_items(conn: AsyncConnection, ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        await conn.execute(delete(ai).where(ai.c.id.in_(ids), ai.c.jira_key.is_(None)))


async def open_action_items_with_jira(conn: AsyncConnection, limit: int = 500) -> list[dict]:
    q = (select(ai).where(ai.c.jira_key.is_not(None), ai.c.jira_done.is_(False))
         .order_by(ai.c.id).limit(limit))
    return [dict(r) for r in (await conn.execute(q)).mappings()]


async def war_room(conn: AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(wr).where(wr.c.incident_id == incident_id))).mappings().first()
    return dict(row) if row else None


async def save_war_room(db, conn: AsyncConnection, incident_id: int, *, chat_id: str,
                        web_url: str | None, topic: str, members: list[str],
                        now: datetime) -> None:
    values = dict(chat_id=chat_id, web_url=web_url, topic=topic, members=members)
    stmt = db.insert(wr).values(incident_id=incident_id, created_at=now, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[wr.c.incident_id], set_=values))
