"""What the heartbeats look like now, read from storage and the catalog: for `incident status`
and /metrics. Worked out from the last beat at the moment of asking (not only the sweep's last
look), so a silence shows even between two sweeps."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cards.status import StatusRow, StatusSection
from handlers.context import Context
from incidents import heartbeats as rules
from incidents.metrics import duration
from incidents.model import ref
from storage import heartbeats as store


@dataclass(frozen=True)
class HeartbeatState:
    name: str
    service: str
    every: str
    state: str                      # waiting | up | missing
    silent_seconds: float           # since the last beat (or since watching began)
    last_beat_at: datetime | None
    incident_id: int | None
    token_env: str | None
    token_set: bool

    @property
    def missing(self) -> bool:
        return self.state == rules.MISSING


async def heartbeat_states(ctx: Context) -> list[HeartbeatState]:
    async with ctx.db.read() as conn:
        rows = await store.all_states(conn)
    now = ctx.now()
    return [_state(ctx, beat, rows.get(beat.name), now)
            for beat in ctx.catalog.heartbeats.values()]


def _state(ctx: Context, beat: rules.Heartbeat, row: dict | None, now: datetime
           ) -> HeartbeatState:
    row = row or {"last_beat_at": None, "watched_since": now, "incident_id": None}
    # The reader never restarts the watch (that is the sweep's call): last_swept=now.
    found = rules.verdict(beat, last_beat=row["last_beat_at"],
                          watched_since=row["watched_since"], last_swept=now, now=now)
    return HeartbeatState(beat.name, beat.service, beat.every(), found.state,
                          max(0.0, found.silent_for(now).total_seconds()), row["last_beat_at"],
                          row["incident_id"], beat.token_env,
                          beat.name in ctx.configured.heartbeat_tokens)


async def status_section(ctx: Context) -> StatusSection | None:
    """`incident status`'s Heartbeats section (None when the catalog declares none)."""
    if not ctx.catalog.heartbeats:
        return None
    rows = [_row(s) for s in await heartbeat_states(ctx)]
    return StatusSection("Heartbeats", rows)


def _row(s: HeartbeatState) -> StatusRow:
    ago = duration(s.silent_seconds)
    if s.missing:
        text = f"MISSING for {ago}" + (f" ({ref(s.incident_id)})" if s.incident_id else "")
    elif s.state == rules.UP:
        text = f"up, last beat {ago} ago"
    else:
        text = f"waiting for a first beat ({ago} so far)"
    text += f"; {s.service}, {s.every}"
    if s.token_env and not s.token_set:
        text += f"; {s.token_env} is not set, so its door refuses beats (401)"
    return StatusRow(s.name, text, problem=s.missing or bool(s.token_env and not s.token_set))
