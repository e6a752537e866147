"""Microsoft Graph (v1.0) for war-room chats (find or create a group chat, add people, install
the Firebell app in it) and meeting bridges (an online meeting per incident, createOrGet).

Speaks OAuth2 client credentials and the few Graph calls directly with httpx. MSAL is not used:
it insists on https authorities and asks Microsoft's instance-discovery service about any host it
does not know, which a sovereign cloud, a proxy or a test server would trip over.

Every creation comes with a look-up (chat by topic, member list, installed apps), so a job re-run
after a lost answer finds what the first run made instead of making a second one.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from integrations.errors import PermanentFailure, TemporaryFailure, classify_status

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/.default"
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
# Graph refuses, or later breaks, smaller group chats (see tests/fakes/graph.py).
MIN_GROUP_MEMBERS = 3
# Whoever joins a war room late should still read what happened before they came.
ALL_HISTORY = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Chat:
    id: str
    topic: str | None
    web_url: str | None
    created: bool = False  # True when this call made it (False: it was already there)


@dataclass(frozen=True)
class Meeting:
    id: str | None
    join_url: str
    created: bool = False  # True when this call made it (False: createOrGet found it)


@dataclass
class MembersAdded:
    added: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # no such user in the tenant


class GraphClient:
    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str,
                 base_url: str = "https://graph.microsoft.com/v1.0",
                 authority_host: str = "https://login.microsoftonline.com",
                 timeout: float = 10.0, client: httpx.AsyncClient | None = None):
        self._tenant = tenant_id
        self._client_id = client_id
        self._secret = client_secret
        self._base = base_url.rstrip("/")
        self._authority = authority_host.rstrip("/")
        self._http = client or httpx.AsyncClient(timeout=timeout)
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    # ---- war room ------------------------------------------------------------------------

    async def ensure_war_room(self, topic: str, member_upns: list[str]) -> Chat:
        """The group chat with this topic, seen through the first member; created if missing.
        The topic must be unique per incident (e.g. "INC-7 checkout down")."""
        members = _unique(member_upns)
        _check_group_size(members)
        found = await self.find_chat(topic, members[0])
        return found or await self.create_group_chat(topic, members)

    async def find_chat(self, topic: str, member_upn: str) -> Chat | None:
        url = f"{self._base}/users/{_seg(member_upn)}/chats"
        params = {"$filter": f"topic eq {odata_string(topic)}", "$top": "50"}
        chats = [c async for c in self._pages(url, params, f"list chats of {member_upn}",
                                              not_found=_user_missing(member_upn))]
        # The filter is the server's; check again here and take the oldest if there are twins.
        chats = [c for c in chats if c.get("topic") == topic and c.get("chatType") == "group"]
        chats.sort(key=lambda c: c.get("createdDateTime") or "")
        return _chat(chats[0]) if chats else None

    async def create_group_chat(self, topic: str, members: list[str],
                                owners: Collection[str] | None = None) -> Chat:
        """`owners` None: everyone is an owner (what in-tenant people need); otherwise the others
        join as guests."""
        members = _unique(members)
        _check_group_size(members)
        owner_set = {o.lower() for o in owners} if owners is not None else None
        if owner_set is not None and not any(m.lower() in owner_set for m in members):
            raise PermanentFailure(f"war room {topic!r}: at least one member must be an owner")
        body = {
            "chatType": "group",
            "topic": topic,
            "members": [_member(upn, owner_set is None or upn.lower() in owner_set)
                        for upn in members],
        }
        chat = await self._call("POST", f"{self._base}/chats", f"create chat {topic!r}", json=body,
                                not_found="a member is not a user in this tenant: check the "
                                          "UPNs given for the war room")
        return _chat(chat, created=True)

    async def add_members(self, chat_id: str, upns: Iterable[str]) -> MembersAdded:
        """Adds the ones not in the chat yet. People unknown to the tenant are reported, not
        fatal: one stale UPN must not keep everyone else out of the war room."""
        present = await self._member_keys(chat_id)
        result = MembersAdded()
        for upn in _unique(upns):
            if upn.lower() in present:  # members carry their e-mail, usually the UPN
                result.already_there.append(upn)
                continue
            user_id = await self._user_id(upn)
            if user_id is None:
                result.unknown.append(upn)
            elif user_id.lower() in present:
                result.already_there.append(upn)
            else:
                await self._call("POST", f"{self._base}/chats/{_seg(chat_id)}/members",
                                 f"add {upn} to chat", json=_member(upn, True, history=True),
                                 not_found=_chat_missing(chat_id))
                result.added.append(upn)
        return result

    async def ensure_app_installed(self, chat_id: str, teams_app_id: str) -> bool:
        """Install the app (its id in the tenant's app catalog, not the manifest id) unless it is
        there. Returns True when this call installed it."""
        url = f"{self._base}/chats/{_seg(chat_id)}/installedApps"
        params = {"$expand": "teamsApp", "$filter": f"teamsApp/id eq {odata_string(teams_app_id)}"}
        installed = [a async for a in self._pages(url, params, "list chat apps",
                                                  not_found=_chat_missing(chat_id))]
        if installed:
            return False
        bind = f"{GRAPH_RESOURCE}/v1.0/appCatalogs/teamsApps/{teams_app_id}"
        try:
            await self._call("POST", url, "install app in chat", json={"teamsApp@odata.bind": bind},
                             not_found=f"Teams app {teams_app_id} (or chat {chat_id}) not found: "
                                       "check the app's id in the tenant app catalog")
        except _Conflict:
            return False  # installed by a run whose answer was lost
        return True

    # ---- meeting bridge ------------------------------------------------------------------

    async def create_or_get_meeting(self, organizer: str, external_id: str, subject: str
                                    ) -> Meeting:
        """The organizer's online meeting with this external id, created if there is none: the
        same external id always gives the same meeting, so a retry never makes a second one.
        `organizer` is an object id or a UPN (looked up: the onlineMeetings API takes object ids
        only). Needs OnlineMeetings.ReadWrite.All and an application access policy granted to
        the organizer."""
        user_id = await self._user_id(organizer) if "@" in organizer else organizer
        if user_id is None:
            raise PermanentFailure(f"Graph create meeting: {_organizer_missing(organizer)}")
        url = f"{self._base}/users/{_seg(user_id)}/onlineMeetings/createOrGet"
        status, body = await self._exchange(
            "POST", url, "create meeting", json={"externalId": external_id, "subject": subject},
            not_found=_organizer_missing(organizer), forbidden=MEETING_PERMISSIONS)
        join_url = str(body.get("joinWebUrl") or body.get("joinUrl") or "")
        if not join_url.startswith("https://"):
            raise PermanentFailure(f"Graph create meeting: no joinWebUrl in the answer "
                                   f"(HTTP {status})")
        return Meeting(id=body.get("id"), join_url=join_url, created=status == 201)

    # ---- look-ups ------------------------------------------------------------------------

    async def _member_keys(self, chat_id: str) -> set[str]:
        url = f"{self._base}/chats/{_seg(chat_id)}/members"
        keys: set[str] = set()
        async for member in self._pages(url, None, "list chat members",
                                        not_found=_chat_missing(chat_id)):
            keys.update(str(member.get(k) or "").lower() for k in ("userId", "email"))
        keys.discard("")
        return keys

    async def _user_id(self, upn: str) -> str | None:
        try:
            user = await self._call("GET", f"{self._base}/users/{_seg(upn)}", f"look up {upn}",
                                    params={"$select": "id"}, not_found=None)
        except _NotFound:
            return None
        return str(user.get("id") or "") or None

    async def _pages(self, url: str, params: dict[str, str] | None, what: str, *,
                     not_found: str | None):
        while url:
            page = await self._call("GET", url, what, params=params, not_found=not_found)
            for item in page.get("value") or []:
                yield item
            url, params = page.get("@odata.nextLink"), None  # the next link carries the query

    # ---- HTTP ----------------------------------------------------------------------------

    async def _call(self, method: str, url: str, what: str, *, params: dict | None = None,
                    json: Any = None, not_found: str | None) -> dict[str, Any]:
        return (await self._exchange(method, url, what, params=params, json=json,
                                     not_found=not_found))[1]

    async def _exchange(self, method: str, url: str, what: str, *, params: dict | None = None,
                        json: Any = None, not_found: str | None,
                        forbidden: str | None = None) -> tuple[int, dict[str, Any]]:
        """The answer's status and JSON body; failures raised as in _failure."""
        resp = await self._send(method, url, what, params, json)
        if resp.status_code == 401:
            # Tokens can be revoked or expire early: one fresh token, then it is the setup.
            self._token = None
            resp = await self._send(method, url, what, params, json)
            if resp.status_code == 401:
                raise PermanentFailure(
                    f"Graph {what}: the app's token was refused (HTTP 401 {_graph_error(resp)}): "
                    "check GRAPH_TENANT_ID and the app's admin-consented Graph permissions")
        if resp.status_code >= 400:
            raise _failure(resp, what, not_found, forbidden)
        try:
            return resp.status_code, resp.json() if resp.content else {}
        except ValueError:
            return resp.status_code, {}

    async def _send(self, method: str, url: str, what: str, params: dict | None,
                    json: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self._bearer()}"}
        try:
            return await self._http.request(method, url, params=params, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"Graph {what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"Graph {what}: {type(exc).__name__} {exc}") from exc

    async def _bearer(self) -> str:
        async with self._token_lock:  # concurrent jobs share one token request
            if self._token and self._token[1] > time.monotonic():
                return self._token[0]
            self._token = await self._fetch_token()
            return self._token[0]

    async def _fetch_token(self) -> tuple[str, float]:
        url = f"{self._authority}/{_seg(self._tenant)}/oauth2/v2.0/token"
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._secret, "scope": GRAPH_SCOPE}
        try:
            resp = await self._http.post(url, data=form)
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"Graph token: {type(exc).__name__} {exc}") from exc
        if resp.status_code >= 400:
            raise _token_failure(resp)
        body = resp.json()
        lifetime = float(body.get("expires_in", 3600))
        # Renew five minutes early so a token never expires between our check and Graph's.
        return body["access_token"], time.monotonic() + max(30.0, lifetime - 300)


class _NotFound(PermanentFailure):
    pass


class _Conflict(PermanentFailure):
    pass


CHAT_PERMISSIONS = ("Chat.Create, Chat.ReadBasic.All, ChatMember.ReadWrite.All and "
                    "TeamsAppInstallation.ReadWriteForChat.All, with admin consent")
MEETING_PERMISSIONS = ("OnlineMeetings.ReadWrite.All, with admin consent, and an application "
                       "access policy granted to the meeting organizer (New-CsApplicationAccess"
                       "Policy, Grant-CsApplicationAccessPolicy)")


def _failure(resp: httpx.Response, what: str, not_found: str | None,
             forbidden: str | None = None) -> Exception:
    if resp.status_code in (408, 425, 429) or resp.status_code >= 500:
        return classify_status(resp.status_code, _graph_error(resp),
                               resp.headers.get("Retry-After"), f"Graph {what}")
    detail = f"HTTP {resp.status_code} {_graph_error(resp)}"
    if resp.status_code == 404:
        return _NotFound(f"Graph {what}: {not_found} ({detail})" if not_found
                         else f"Graph {what}: {detail}")
    if resp.status_code == 409:
        return _Conflict(f"Graph {what}: {detail}")
    if resp.status_code == 403:
        return PermanentFailure(
            f"Graph {what}: access denied ({detail}): grant the app registration the application "
            f"permissions {forbidden or CHAT_PERMISSIONS}")
    return PermanentFailure(f"Graph {what}: {detail}")


def _token_failure(resp: httpx.Response) -> Exception:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    codes = body.get("error_codes") or []
    error = str(body.get("error") or "")
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        return classify_status(resp.status_code, error, resp.headers.get("Retry-After"),
                               "Graph token")
    # AADSTS codes: 7000215 wrong secret, 7000222 expired secret, 700016 unknown app, 90002 tenant.
    if error == "invalid_client" or 7000215 in codes or 7000222 in codes:
        hint = ("Graph refused the credentials: check GRAPH_CLIENT_SECRET (the secret's value, "
                "not its id; has it expired?)")
    elif error == "unauthorized_client" or 700016 in codes:
        hint = "Graph does not know this app: check GRAPH_CLIENT_ID and GRAPH_TENANT_ID"
    elif 90002 in codes:
        hint = "Graph does not know this tenant: check GRAPH_TENANT_ID"
    else:
        hint = f"Graph token refused: HTTP {resp.status_code} {error}"
    return PermanentFailure(f"{hint} (AADSTS {codes[0] if codes else '?'})")


def _graph_error(resp: httpx.Response) -> str:
    try:
        error = resp.json().get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}"
    except (ValueError, AttributeError):
        return resp.text[:200]


def odata_string(value: str) -> str:
    """An OData string literal: quotes around, inner single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _member(upn: str, owner: bool, history: bool = False) -> dict[str, Any]:
    member = {"@odata.type": MEMBER_TYPE, "roles": ["owner" if owner else "guest"],
              "user@odata.bind": f"{GRAPH_RESOURCE}/v1.0/users({odata_string(upn)})"}
    if history:
        member["visibleHistoryStartDateTime"] = ALL_HISTORY
    return member


def _chat(body: dict[str, Any], created: bool = False) -> Chat:
    return Chat(id=str(body["id"]), topic=body.get("topic"), web_url=body.get("webUrl"),
                created=created)


def _check_group_size(members: list[str]) -> None:
    if len(members) < MIN_GROUP_MEMBERS:
        raise PermanentFailure(
            f"a war room needs at least {MIN_GROUP_MEMBERS} different people (Graph group chat); "
            f"got {len(members)}: add responders to the incident or its service's team")


def _unique(upns: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for upn in upns:
        if upn and upn.strip():
            seen.setdefault(upn.strip().lower(), upn.strip())
    return list(seen.values())


def _user_missing(upn: str) -> str:
    return f"user {upn} not found in the tenant: check the person's UPN"


def _organizer_missing(organizer: str) -> str:
    return (f"FIREBELL_MEETING_ORGANIZER {organizer} is not a user in this tenant (give an "
            "object id or UPN)")


def _chat_missing(chat_id: str) -> str:
    return f"chat {chat_id} not found (deleted, or the app lost access)"


def _seg(value: str) -> str:
    # UPNs of guests contain '#EXT#'; chat ids contain ':' and '@'.
    return quote(value, safe="@")
