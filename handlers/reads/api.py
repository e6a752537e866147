"""HTTP endpoints for reports:

- GET /api/incidents and /api/incidents.csv: incidents for a data team's own dashboards, behind
  a bearer token (FIREBELL_API_TOKEN; unset = the API is off and answers 404). Filters since /
  until (on the trigger time, ISO 8601), team, service, level, status (comma lists); pages of
  `limit` (default 100, at most 1000) from `offset`, in id order. Times are ISO 8601 UTC.
  Private incidents are never listed; how many match the filters is given as
  `private_incidents` (JSON) and `X-Private-Count` (CSV).
- GET /charts/<key>.png: the chart images in report cards (Teams fetches them without
  credentials, so the key is random and unguessable).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Any

from aiohttp import web

from handlers.context import Context
from handlers.reads.bearer import bearer_matches, unauthorized
from incidents.limits import ACCEPTED_TIMES, INT32, accepted_time
from incidents import postmortem as pm_rules
from incidents.model import ref
from storage import reports
from storage.db import DatabaseUnavailable
from storage.export import IncidentFilter, list_incidents

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
FIELDS = ("id", "ref", "title", "service", "team", "level", "status", "source", "external_id",
          "pd_number", "priority", "triggered_at", "first_acknowledged_at", "acknowledged_by",
          "resolved_at", "closed_at", "commander", "parent_id", "link_kind", "recurrence_of",
          "fingerprint", "mtta_seconds", "mttr_seconds", "impact_minutes", "impact_usd",
          "postmortem_status", "html_url")


class BadRequest(ValueError):
    pass


class ReportEndpoints:
    def __init__(self, ctx: Context, api_token: str = ""):
        self.ctx = ctx
        self.token = api_token

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/incidents", self.incidents_json),
                web.get("/api/incidents.csv", self.incidents_csv),
                web.get("/charts/{key}.png", self.chart)]

    # -- API --------------------------------------------------------------------------------------
    def _authorise(self, request: web.Request) -> None:
        if not self.token:
            raise web.HTTPNotFound(text="The incident API is off (FIREBELL_API_TOKEN is not set).")
        if not bearer_matches(request, self.token):
            raise unauthorized()

    async def _page(self, request: web.Request
                    ) -> tuple[list[dict[str, Any]], int, int, int, int]:
        self._authorise(request)
        try:
            filters, limit, offset = parse_query(request.query)
        except BadRequest as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        try:
            async with self.ctx.db.read() as conn:
                rows, total, private = await list_incidents(conn, filters, limit=limit,
                                                            offset=offset)
        except DatabaseUnavailable:
            raise web.HTTPServiceUnavailable(text="database unavailable",
                                             headers={"Retry-After": "5"}) from None
        return [self._item(r) for r in rows], total, limit, offset, private

    async def incidents_json(self, request: web.Request) -> web.Response:
        items, total, limit, offset, private = await self._page(request)
        return web.json_response({"items": items, "total": total, "limit": limit,
                                  "offset": offset, "private_incidents": private})

    async def incidents_csv(self, request: web.Request) -> web.Response:
        items, total, _, _, private = await self._page(request)
        return web.Response(text=csv_text(items), content_type="text/csv", charset="utf-8",
                            headers={"X-Total-Count": str(total),
                                     "X-Private-Count": str(private),
                                     "Content-Disposition": 'inline; filename="incidents.csv"'})

    async def export(self, filters: IncidentFilter) -> list[dict[str, Any]]:
        """Every incident the filters select, as the API shows them (`firebell export`): private
        ones left out, as from the API."""
        items: list[dict[str, Any]] = []
        while True:
            async with self.ctx.db.read() as conn:
                rows, total, _ = await list_incidents(conn, filters, limit=MAX_LIMIT,
                                                      offset=len(items))
            items += [self._item(r) for r in rows]
            if not rows or len(items) >= total:
                return items

    def _item(self, r: dict[str, Any]) -> dict[str, Any]:
        trig, ack, res = r["triggered_at"], r["first_acknowledged_at"], r["resolved_at"]
        root = r["parent_id"] is None
        service = self.ctx.catalog.service(r["service"])
        minutes = usd = None
        if root and res is not None:
            minutes = round(pm_rules.impact_minutes(trig, res, res, r["impact_minutes"]), 1)
            if service and service.revenue_per_minute_usd:
                usd = pm_rules.impact_usd(service.revenue_per_minute_usd, minutes)
        item = {k: r.get(k) for k in FIELDS if k in r}
        item.update(
            ref=ref(r["id"]), impact_minutes=minutes, impact_usd=usd,
            mtta_seconds=round((ack - trig).total_seconds(), 1) if ack else None,
            mttr_seconds=round((res - trig).total_seconds(), 1) if res else None)
        for k in ("triggered_at", "first_acknowledged_at", "resolved_at", "closed_at"):
            item[k] = iso(item[k])
        return {k: item.get(k) for k in FIELDS}

    # -- charts -----------------------------------------------------------------------------------
    async def chart(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if not (0 < len(key) <= 64):
            raise web.HTTPNotFound()
        async with self.ctx.db.read() as conn:
            png = await reports.chart(conn, key)
        if png is None:
            raise web.HTTPNotFound()
        return web.Response(body=png, content_type="image/png",
                            headers={"Cache-Control": "public, max-age=31536000, immutable"})


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(name: str, raw: str) -> datetime:
    value = raw.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"{name}: {raw[:40]!r} is not an ISO 8601 time "
                         "(e.g. 2025-03-01 or 2025-03-01T00:00:00Z)") from None
    accepted = accepted_time(at)
    if accepted is None:  # year 9999 with an offset overflowed on its way to the database
        raise BadRequest(f"{name} must be {ACCEPTED_TIMES}")
    return accepted


def _number(query, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if value < low:
        raise BadRequest(f"{name} must be at least {low}")
    if high is not None:
        return min(value, high)
    # From 2^63 on, the database's OFFSET overflowed (a 500); no listing is 2^31 long.
    if value not in INT32:
        raise BadRequest(f"{name} must be at most {INT32[-1]}")
    return value


def parse_query(query) -> tuple[IncidentFilter, int, int]:
    def values(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for raw in query.getall(name, []) for v in raw.split(",")
                     if v.strip())
    since = parse_time("since", query["since"]) if query.get("since") else None
    until = parse_time("until", query["until"]) if query.get("until") else None
    if since and until and until <= since:
        raise BadRequest("until must be after since")
    filters = IncidentFilter(since=since, until=until, teams=values("team"),
                             services=values("service"), levels=values("level"),
                             statuses=values("status"))
    return (filters, _number(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            _number(query, "offset", 0, 0))


def csv_text(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for item in items:
        writer.writerow([_csv_cell(item[f]) for f in FIELDS])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
