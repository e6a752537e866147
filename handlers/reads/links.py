"""Every address Firebell hands out, built in one place: the postmortem page, the incident card
in its Teams channel, a JIRA task, a report chart."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from sqlalchemy.ext.asyncio import AsyncConnection

from handlers.context import Context
from incidents.model import Incident
from storage import search as index


def postmortem_page(ctx: Context, postmortem: Mapping[str, Any] | None) -> str | None:
    """The postmortem page (append `.md` for Markdown): its secret link token, never the
    incident id. None without a postmortem."""
    token = (postmortem or {}).get("link_token")
    return f"{ctx.policy.public_base_url}/postmortems/{token}" if token else None


def member_key(link_token: str, email: str) -> str:
    """A private incident's postmortem link names its member and proves it was made for them:
    keyed on the postmortem's secret, so rotating the link voids every member's link too."""
    return hmac.new(link_token.encode(), email.lower().encode(),
                    hashlib.sha256).hexdigest()[:32]


def member_postmortem_page(ctx: Context, postmortem: Mapping[str, Any] | None,
                           email: str) -> str | None:
    """The postmortem page of a private incident, for one of its members (or an admin): the
    page checks the key and that they still are one."""
    page = postmortem_page(ctx, postmortem)
    if page is None:
        return None
    query = urlencode({"member": email.lower(),
                       "key": member_key(postmortem["link_token"], email)})
    return f"{page}?{query}"


def teams_message(channel_id: str, message_id: str) -> str:
    """A deep link to a message (the incident's card) in a Teams channel."""
    return (f"https://teams.microsoft.com/l/message/{quote(channel_id, safe='')}/{message_id}"
            f"?parentMessageId={message_id}")


async def card_in_channel(conn: AsyncConnection, incident: Incident) -> str | None:
    """The deep link to the incident's card in its Teams channel, once it has been posted."""
    found = await cards_in_channels(conn, [incident.id])
    return found.get(incident.id)


async def cards_in_channels(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    return {i: teams_message(*where) for i, where in (await index.card_links(conn, ids)).items()}


def jira_task(ctx: Context, key: str | None) -> str | None:
    if not key or not ctx.configured.jira_url:
        return None
    return f"{ctx.configured.jira_url.rstrip('/')}/browse/{key}"


def chart(ctx: Context, key: str) -> str:
    return f"{ctx.policy.public_base_url}/charts/{key}.png"
