"""GET /incidents/INC-n/postmortem (HTML) and /incidents/INC-n/postmortem.md (Markdown): the
postmortem where everyone can read it, linked from cards and e-mails."""
from __future__ import annotations

from aiohttp import web

from cards.postmortem_page import postmortem_html, postmortem_markdown
from handlers.context import Context
from handlers.postmortems import impact_of, missing_for
from incidents import postmortem as rules
from incidents.model import parse_ref
from storage import incidents as store
from storage import postmortems as pm_store


def postmortem_routes(ctx: Context) -> list[web.RouteDef]:
    async def page(request: web.Request, markdown: bool = False) -> web.Response:
        incident_id = parse_ref(request.match_info["ref"])
        if incident_id is None:
            raise web.HTTPNotFound(text="no such incident")
        async with ctx.db.read() as conn:
            incident = await store.get(conn, incident_id)
            if incident is None:
                raise web.HTTPNotFound(text=f"INC-{incident_id} does not exist")
            postmortem = await pm_store.get(conn, incident_id)
            items = await pm_store.action_items(conn, incident_id)
            timeline = await store.timeline(conn, incident_id, limit=500)
            missing = await missing_for(ctx, conn, incident) if postmortem else \
                rules.missing(None, items)
        team = ctx.catalog.team(incident.team)
        common = dict(missing=missing, impact_usd=impact_of(ctx, incident, postmortem),
                      service_name=incident.service, team_name=team.name if team else None)
        if markdown:
            return web.Response(text=postmortem_markdown(incident, postmortem, items, timeline,
                                                         **common),
                                content_type="text/markdown", charset="utf-8")
        jira = {i["jira_key"]: ctx.jira.browse_url(i["jira_key"]) for i in items
                if i.get("jira_key") and ctx.jira is not None}
        return web.Response(text=postmortem_html(incident, postmortem, items, timeline,
                                                 jira=jira, **common),
                            content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": "default-src 'none'; "
                                                                "style-src 'unsafe-inline'"})

    async def markdown_page(request: web.Request) -> web.Response:
        return await page(request, markdown=True)

    return [web.get("/incidents/{ref}/postmortem", page),
            web.get("/incidents/{ref}/postmortem.md", markdown_page)]
