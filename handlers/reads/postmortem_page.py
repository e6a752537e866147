"""The postmortem, read-only, from stored state:

- GET /postmortems/<token> (HTML) and /postmortems/<token>.md (Markdown): the link on cards,
  e-mails and JIRA tasks. The token is the postmortem's own random secret (storage.postmortems);
  whoever has the link may read it, and nobody can reach it by counting incident ids. An
  unknown or malformed token is a plain 404.
- GET /api/incidents/INC-n/postmortem (and .md): the same for tools, with
  `Authorization: Bearer $FIREBELL_API_TOKEN` (as /api/incidents: 404 while the API is off,
  401 without the token).

A private incident's postmortem opens for its members only: the link must carry the member's
own key (`incident postmortem INC-n link` in a personal chat gives it), and they must still be a
member (or an admin). The API's token is nobody's in particular: 404 there.
"""
from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from handlers.reads import links
from handlers.reads.bearer import bearer_matches, unauthorized
from handlers.reads.postmortem import missing_for
from incidents import postmortem as pm_rules
from incidents.model import Incident, parse_ref, ref
from pages.postmortem import postmortem_html, postmortem_markdown
from storage import incidents as store
from storage import members
from storage import postmortems as pm_store
from storage import timeline
from storage.db import DatabaseUnavailable

TOKEN = "{token:[A-Za-z0-9_-]+}"
TOKEN_LENGTHS = range(22, 65)  # 128 bits and more in base64url; the column holds 64
# The address is the secret: not sent on as a Referer when a reader follows a link on the page,
# not kept by caches (a rotated link must stop working), not indexed.
_PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex, nofollow"}
_HTML_HEADERS = {**_PRIVATE,
                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}

Finder = Callable[[AsyncConnection], Awaitable[dict[str, Any] | None]]
_MEMBERS_ONLY = ("This postmortem is of a private incident: it opens only with a member's own "
                 "link. Members get theirs with `incident postmortem INC-n link` in a personal "
                 "chat with Firebell.")


async def _a_member(ctx: Context, conn: AsyncConnection, incident, postmortem: dict[str, Any],
                    email: str, key: str) -> bool:
    if not email or not key or not hmac.compare_digest(
            key, links.member_key(postmortem["link_token"], email)):
        return False
    return email.lower() in ctx.policy.admins or await members.is_member(conn, incident.id,
                                                                         email)


def postmortem_routes(ctx: Context, api_token: str = "") -> list[web.RouteDef]:
    async def by_link(request: web.Request, markdown: bool = False) -> web.Response:
        token = request.match_info["token"]
        if len(token) not in TOKEN_LENGTHS:
            raise web.HTTPNotFound()
        return await _page(ctx, lambda conn: pm_store.by_link_token(conn, token), markdown,
                           member=(request.query.get("member", ""), request.query.get("key", "")))

    async def by_api(request: web.Request, markdown: bool = False) -> web.Response:
        if not api_token:
            raise web.HTTPNotFound(text="The incident API is off (FIREBELL_API_TOKEN is not set).")
        if not bearer_matches(request, api_token):
            raise unauthorized()
        incident_id = parse_ref(request.match_info["ref"])
        if incident_id is None:
            raise web.HTTPNotFound(text="no such incident")
        return await _page(ctx, lambda conn: pm_store.get(conn, incident_id), markdown,
                           not_found=f"{ref(incident_id)} has no postmortem the API may show")

    async def by_link_md(request: web.Request) -> web.Response:
        return await by_link(request, markdown=True)

    async def by_api_md(request: web.Request) -> web.Response:
        return await by_api(request, markdown=True)

    return [web.get(f"/postmortems/{TOKEN}", by_link),
            web.get(f"/postmortems/{TOKEN}.md", by_link_md),
            web.get("/api/incidents/{ref}/postmortem", by_api),
            web.get("/api/incidents/{ref}/postmortem.md", by_api_md)]


async def _page(ctx: Context, find: Finder, markdown: bool, *,
                not_found: str | None = None,
                member: tuple[str, str] | None = None) -> web.Response:
    try:
        async with ctx.db.read() as conn:
            postmortem = await find(conn)
            incident = await store.get(conn, postmortem["incident_id"]) if postmortem else None
            if incident is None or (incident.private and member is None):
                raise web.HTTPNotFound(text=not_found) if not_found else web.HTTPNotFound()
            if incident.private and not await _a_member(ctx, conn, incident, postmortem,
                                                        *member):
                raise web.HTTPForbidden(text=_MEMBERS_ONLY, headers=_PRIVATE)
            items = await pm_store.action_items(conn, incident.id)
            entries = await timeline.entries_with_ids(conn, incident.id)
            missing = await missing_for(ctx, conn, incident)
            card = await links.card_in_channel(conn, incident)
    except DatabaseUnavailable:
        raise web.HTTPServiceUnavailable(text="database unavailable",
                                         headers={"Retry-After": "5"}) from None
    # One timeline: the RCA's, with what the incident timeline gained since the form last
    # opened (shown, not stored: a read changes nothing).
    text, _ = pm_rules.refill_timeline(postmortem.get("timeline"), entries,
                                       postmortem.get("timeline_through"), ctx.catalog.timezone)
    postmortem = {**postmortem, "timeline": text}
    team = ctx.catalog.team(incident.team)
    impact = pm_rules.impact_of(ctx.catalog, incident, postmortem, ctx.now())
    common = dict(missing=missing, impact_usd=impact, service_name=incident.service,
                  team_name=team.name if team else None, name=ctx.catalog.display_name,
                  links=_links_back(ctx, incident, postmortem, card), zone=ctx.catalog.timezone)
    if markdown:
        return web.Response(text=postmortem_markdown(incident, postmortem, items, **common),
                            content_type="text/markdown", charset="utf-8", headers=_PRIVATE)
    jira = {i["jira_key"]: links.jira_task(ctx, i["jira_key"]) for i in items
            if links.jira_task(ctx, i.get("jira_key"))}
    return web.Response(text=postmortem_html(incident, postmortem, items, jira=jira, **common),
                        content_type="text/html", charset="utf-8", headers=_HTML_HEADERS)


def _links_back(ctx: Context, incident: Incident, postmortem: dict[str, Any],
                card: str | None) -> list[tuple[str, str]]:
    """Where the incident lives elsewhere: its card in Teams, PagerDuty, the service's runbook,
    the postmortem's JIRA task (each only when there is one)."""
    service = ctx.catalog.service(incident.service)
    found = [("Incident card in Teams", card), ("PagerDuty", incident.html_url),
             ("Runbook", service.runbook if service else None),
             ("JIRA", links.jira_task(ctx, postmortem.get("jira_key")))]
    return [(label, url) for label, url in found if url and url.startswith(("https://", "http://"))]
