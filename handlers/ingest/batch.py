"""Alert ingestion, in named stages: remember (idempotency) -> open or apply -> queue correlation.

Runs inside the caller's transaction: the webhook door commits several deliveries together
(group commit), and a batch is set-based where a storm needs it — one statement for the event
ids, one to find known incidents, one to insert the new ones — and per incident where an event
changes one. Makes no outside call. A new incident gets no card yet: its correlation job decides
first whether it is a root (card, war room, ...) or folds into another incident.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.incident.change import change
from handlers.incident.paging import Pages, apply_page_event
from incidents import alerts as a
from incidents import events
from incidents.alerts import AlertEvent
from incidents.lifecycle import CLOSED
from incidents.model import Incident
from storage import inbound, outbox
from storage import incidents as store
from storage.timeline import note, note_many

CREATED, UPDATED, UNCHANGED, REPEATED = "created", "updated", "unchanged", "repeated"
PAGED = "page"   # about a page sent from Teams for an incident: the page moved, not an incident
Key = events.Key


async def ingest_batch(ctx: Context, conn: AsyncConnection,
                       deliveries: Sequence[Sequence[AlertEvent]]) -> list[list[str]]:
    """Every event of every delivery, in arrival order; one outcome per event."""
    batch = _Batch(ctx, conn)
    await batch.start([e for d in deliveries for e in d])
    outcomes = [[await batch.ingest(e) for e in delivery] for delivery in deliveries]
    await batch.flush()
    return outcomes


class _Batch:
    def __init__(self, ctx: Context, conn: AsyncConnection):
        self.ctx, self.conn, self.now = ctx, conn, ctx.now()
        self.owned: set[str] = set()
        self.known: dict[Key, Incident] = {}
        self.stale: set[Key] = set()                        # changed here: read it again
        self.pending: dict[Key, tuple[AlertEvent, int | None]] = {}   # new, not inserted yet
        self.pages = Pages(())

    async def start(self, events: list[AlertEvent]) -> None:
        self.owned = await inbound.claim_many(self.ctx.db, self.conn,
                                              [e.event_id for e in events], self.now)
        owned = [e for e in events if e.event_id in self.owned]
        self.known = await store.by_external_many(
            self.conn, [(e.source, e.external_id) for e in owned], lock=True)
        self.pages = await Pages.load(self.conn, owned)

    async def ingest(self, event: AlertEvent) -> str:
        if event.event_id not in self.owned:
            return REPEATED  # delivered before (or twice in this batch)
        self.owned.discard(event.event_id)
        page = self.pages.page_of(event)
        if page is not None:
            page = await apply_page_event(self.ctx, self.conn, page, event)
            self.pages.remember(page)
            if page["incident_id"] is not None:
                return PAGED
        key = (event.source, event.external_id)
        if key in self.pending:
            await self.flush()  # a later event for an incident this batch creates
        incident = await self._current(key)
        if incident is None:
            self.pending[key] = (event, None)
            return CREATED
        if incident.status == CLOSED and event.source == "alertmanager" \
                and event.kind == a.TRIGGERED:
            # The group fired again after its incident was closed: a new incident, a recurrence.
            await store.update_fields(self.conn, incident, {
                "external_id": f"{incident.external_id}#{incident.ref}"}, self.now)
            self.known.pop(key, None)
            self.pending[key] = (event, incident.id)
            return CREATED
        self.stale.add(key)
        return UPDATED if await apply_event(self.ctx, self.conn, incident, event) else UNCHANGED

    async def _current(self, key: Key) -> Incident | None:
        if key in self.stale:
            self.stale.discard(key)
            found = await store.get_by_external(self.conn, *key, lock=True)
            if found:
                self.known[key] = found
        return self.known.get(key)

    async def flush(self) -> None:
        """Insert the new incidents, their first timeline entries and correlation jobs."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        rows = [events.new_incident_row(self.ctx.catalog, e, recurrence_of=r,
                                        duplicate_window=self.ctx.policy.duplicate_window)
                for e, r in pending.values()]
        ids = await store.insert_many(self.ctx.db, self.conn, rows, self.now)
        timeline, jobs = [], []
        for key, (event, _) in pending.items():
            self.stale.add(key)
            if key not in ids:  # another replica created it a moment ago: apply to it
                incident = await self._current(key)
                if incident is not None:
                    await apply_event(self.ctx, self.conn, incident, event)
                continue
            timeline.append(events.opened_entry(ids[key], event,
                                                events.rows_by_key(rows)[key]["service"]))
            jobs.append({"kind": "correlate", "incident_id": ids[key],
                         "coalesce_key": f"correlate:{ids[key]}"})
        await note_many(self.conn, timeline)
        await outbox.enqueue_many(self.ctx.db, self.conn, jobs, self.now)


async def apply_event(ctx: Context, conn: AsyncConnection, incident: Incident,
                      event: AlertEvent) -> bool:
    """Apply what the event says to a known incident; False when it changes nothing."""
    changes, said = events.fact_changes(incident, event)
    status_changes, status_text = events.status_changes(incident, event)
    changes.update(status_changes)
    if status_changes:
        changes["last_event_at"] = event.occurred_at
    if event.kind == a.ANNOTATED and event.note:
        # A note is a timeline entry only; the live card does not show notes.
        await note(conn, incident.id, kind="note", text=event.note, actor=events.actor_of(event),
                   at=event.occurred_at)
        if not changes:
            return True
    if not changes:
        return False
    text = "; ".join(x for x in [status_text, *said] if x)
    await change(ctx, conn, incident, changes, kind=event.kind, actor=events.actor_of(event),
                 text=text or (event.detail or "updated"), at=event.occurred_at,
                 data={"event_id": event.event_id})
    return True
