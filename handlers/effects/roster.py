"""The Teams roster cache: who is who, so an activity's AAD object id maps to a catalog person.
Fetched by an outbox job (install, members added or removed), never on a request's path, and
stored under the tenant of the activity that asked for it: a roster speaks for its own tenant
only."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.effects.registry import Clients, effect
from storage import outbox, people
from storage.outbox import Job


async def queue_roster_sync(ctx: Context, conn: AsyncConnection, *, service_url: str,
                            roster_id: str, tenant_id: str) -> None:
    # Coalesced: a burst of membership changes queues one fetch (one more if it was running).
    await outbox.enqueue(ctx.db, conn, "sync_roster", now=ctx.now(),
                         payload={"service_url": service_url, "roster_id": roster_id,
                                  "tenant_id": tenant_id},
                         coalesce_key=f"sync_roster:{tenant_id}:{roster_id}")


@effect("sync_roster", system="teams")
async def sync_roster(ctx: Context, clients: Clients, job: Job) -> dict:
    members = await clients.teams.members(job.payload["service_url"], job.payload["roster_id"])
    # Jobs queued before rosters were per tenant carry none: theirs is the unknown tenant ''.
    tenant_id = job.payload.get("tenant_id") or ""
    async with ctx.db.write() as conn:
        count = await people.remember_members(ctx.db, conn, tenant_id, members, ctx.now())
    return {"members": count}
