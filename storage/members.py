"""Who may see a private incident: its members (the declarer and the service's responders).
Every read that lists incidents to a person narrows by `visible_to`; admins see everything."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import ColumnElement, false, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import incident_members as m
from storage.schema import incidents as t


async def add(db, conn: AsyncConnection, incident_id: int, emails: Iterable[str],
              now: datetime) -> None:
    rows = [{"incident_id": incident_id, "email": e.lower(), "added_at": now}
            for e in sorted({e.lower() for e in emails if e})]
    if rows:
        await conn.execute(db.insert(m).on_conflict_do_nothing(), rows)


async def of(conn: AsyncConnection, incident_id: int) -> list[str]:
    q = select(m.c.email).where(m.c.incident_id == incident_id).order_by(m.c.email)
    return list((await conn.execute(q)).scalars())


async def is_member(conn: AsyncConnection, incident_id: int, email: str | None) -> bool:
    if not email:
        return False
    q = select(m.c.email).where(m.c.incident_id == incident_id, m.c.email == email.lower())
    return (await conn.execute(q)).first() is not None


def visible_to(email: str | None, *, admin: bool = False, column=t.c.id,
               private=t.c.private) -> ColumnElement[bool]:
    """Public incidents, and the private ones `email` is a member of (all of them for an
    admin). No e-mail (Firebell does not know who asks, or nobody in particular): public only."""
    if admin:
        return true()
    if not email:
        return private == false()
    members = select(m.c.incident_id).where(m.c.email == email.lower())
    return or_(private == false(), column.in_(members))


def public_only(private=t.c.private) -> ColumnElement[bool]:
    """For what goes to a channel, a mailbox or a report: no private incident by name."""
    return private == false()


async def hidden_ids(conn: AsyncConnection, email: str | None, *, admin: bool = False) -> set[int]:
    """The private incidents `email` may not see (few: private incidents are rare), for reads
    that cannot narrow in SQL, such as the full-text index."""
    if admin:
        return set()
    q = select(t.c.id).where(t.c.private == true(), not_(visible_to(email)))
    return set((await conn.execute(q)).scalars())
