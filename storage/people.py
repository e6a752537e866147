"""The cached Teams roster, per tenant: (tenant id, AAD object id) -> e-mail and name."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import teams_users as t


async def remember_members(db, conn: AsyncConnection, tenant_id: str,
                           members: Iterable[dict[str, Any]], now: datetime) -> int:
    """Store a roster under `tenant_id`: the tenant of the conversation it was fetched for.
    A member's own `tenantId` field is the roster's word, not the activity's: not used."""
    count = 0
    for m in members:
        aad = m.get("aadObjectId") or m.get("objectId")
        if not aad:
            continue
        values = dict(teams_user_id=m.get("id"), name=m.get("name"),
                      email=(m.get("email") or m.get("userPrincipalName") or "").lower() or None,
                      upn=m.get("userPrincipalName"), updated_at=now)
        stmt = db.insert(t).values(tenant_id=tenant_id, aad_object_id=aad, **values)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=[t.c.tenant_id, t.c.aad_object_id], set_=values))
        count += 1
    return count


async def by_aad(conn: AsyncConnection, tenant_id: str,
                 aad_object_id: str | None) -> dict[str, Any] | None:
    if not aad_object_id:
        return None
    q = select(t).where(t.c.tenant_id == tenant_id, t.c.aad_object_id == aad_object_id)
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def by_teams_id(conn: AsyncConnection, tenant_id: str,
                      teams_user_id: str | None) -> dict[str, Any] | None:
    """A roster member by the Teams user id a mention carries (`29:…`)."""
    if not teams_user_id:
        return None
    q = select(t).where(t.c.tenant_id == tenant_id, t.c.teams_user_id == teams_user_id)
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def search(conn: AsyncConnection, tenant_id: str, words: list[str],
                 limit: int) -> list[dict[str, Any]]:
    """Roster members of a tenant (with an e-mail) whose name or e-mail contains every word."""
    q = select(t.c.name, t.c.email).where(t.c.tenant_id == tenant_id, t.c.email.is_not(None))
    for word in words:
        pattern = "%" + word.lower().replace("\\", "\\\\").replace("%", "\\%")\
            .replace("_", "\\_") + "%"
        q = q.where(func.lower(t.c.name).like(pattern, escape="\\")
                    | t.c.email.like(pattern, escape="\\"))
    q = q.order_by(t.c.name).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings()]
