"""Microsoft Graph v1.0 as Firebell uses it for war rooms (integrations/graph.py), plus the Azure
AD token endpoint its client credentials go to. One server, one base URL::

    POST {base}/{tenant}/oauth2/v2.0/token                   token
    GET  {base}/v1.0/users/{idOrUpn}/chats                   list_user_chats  $filter=topic eq '..'
    POST {base}/v1.0/chats                                   create_chat      (group chats)
    GET  {base}/v1.0/chats/{chatId}/members                  list_members
    POST {base}/v1.0/chats/{chatId}/members                  add_member
    GET  {base}/v1.0/users/{idOrUpn}                         get_user
    GET  {base}/v1.0/chats/{chatId}/installedApps            list_apps  $filter=teamsApp/id eq '..'
    POST {base}/v1.0/chats/{chatId}/installedApps            install_app
    POST {base}/v1.0/users/{userId}/onlineMeetings/createOrGet  create_or_get_meeting

(the names are ``RecordedRequest.kind``). Point Firebell at it with ``AZURE_AUTHORITY_HOST={base}``
and ``GRAPH_BASE_URL={base}/v1.0`` (``graph.env()``). A query option or ``$filter`` Firebell does
not send is a 400, so that a new one fails loudly instead of being half understood.

From the Graph docs (microsoft-graph-docs-contrib, api-reference/v1.0/chat-post.md and
chat-list.md): every participant is a ``#microsoft.graph.aadUserConversationMember`` with
``user@odata.bind`` = ``https://graph.microsoft.com/v1.0/users('<id or UPN>')`` and the role
``owner`` or ``guest``; ``$top`` is at most 50, paging by ``@odata.nextLink``. The docs give no
minimum for group chats, but a 2-member group chat can be created and later refuses new members
(RosterAddMemberBlocked, microsoft-graph-docs-contrib issue #1622): the stand-in refuses group
chats under ``min_group_members`` (3), the safe side. Not checked against the live service:
unknown users -> 404 ``NotFound``; adding a member twice -> 201 (the existing member);
installing an app twice -> 409 ``Conflict``.

Meetings (api-reference/v1.0/api/onlinemeeting-createorget.md): with an application token the
path names the organizer by *object id* (a UPN there is not found, as the SDK issues report),
the app needs an application access policy granted to that organizer (else 403, code
``General``, "No application access policy found for this app."), ``externalId`` is required,
and (tenant, organizer, externalId) identifies a meeting: the first call answers 201 Created,
every later one 200 OK with the same meeting (start and end default to now and now + 1 h).
"""
from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import trustme
from aiohttp import web

from tests.fakes.aad_token import AadTokenIssuer
from tests.fakes.http_stand_in import RECORD, HttpStandIn, Refused, error_code

GRAPH = "https://graph.microsoft.com"
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
MAX_TOP = 50
_LITERAL = r"'(?P<value>(?:[^']|'')*)'"
_TOPIC_FILTER = re.compile(rf"^topic eq {_LITERAL}$")
_APP_FILTER = re.compile(rf"^teamsApp/id eq {_LITERAL}$")
_USER_BIND = re.compile(rf"^{re.escape(GRAPH)}/v1\.0/users\({_LITERAL}\)$")
_APP_BIND = re.compile(rf"^{re.escape(GRAPH)}/v1\.0/appCatalogs/teamsApps/(?P<app>[^/]+)$")


def _bad(message: str) -> Refused:
    return _refused(400, "BadRequest", message)


def _refused(status: int, code: str, message: str) -> Refused:
    return Refused(graph_error(status, code, message))


def graph_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(_error_json(code, message), status=status)


def _error_json(code: str, message: str) -> dict:
    inner = {"date": _now_iso()[:19], "request-id": str(uuid.uuid4())}
    return {"error": {"code": code, "message": message, "innerError": inner}}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeGraph(HttpStandIn):
    def __init__(self, *, tenant_id: str = "11111111-2222-3333-4444-555555555555",
                 client_id: str = "99999999-8888-7777-6666-000000000001",
                 client_secret: str = "fake-graph-secret", tls: bool = False,
                 ca: trustme.CA | None = None, min_group_members: int = 3) -> None:
        super().__init__(tls=tls, ca=ca)
        self.tenant_id, self.client_id, self.client_secret = tenant_id, client_id, client_secret
        self.min_group_members = min_group_members
        self.tokens = AadTokenIssuer({client_id: client_secret}, tenant=tenant_id)
        self.users: dict[str, dict] = {}  # id -> user
        self.teams_apps: dict[str, dict] = {}  # catalog id -> teamsApp
        self.chats: dict[str, dict] = {}  # id -> chat, with its "members" and "installedApps"
        self.meetings: dict[tuple[str, str], dict] = {}  # (organizer id, externalId) -> meeting
        self.meeting_policy: set[str] = set()  # organizers the app may make meetings for

    # ---- set up by the test --------------------------------------------------------------------

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def env(self) -> dict[str, str]:
        return {"AZURE_AUTHORITY_HOST": self.base_url, "GRAPH_BASE_URL": self.graph_url}

    def add_user(self, display_name: str, *, upn: str | None = None, mail: str | None = None,
                 id: str | None = None) -> dict:
        given, _, surname = display_name.partition(" ")
        upn = upn or f"{given.lower()}.{(surname or 'user').lower()}@contoso.example"
        user = {"id": id or str(uuid.uuid4()), "displayName": display_name,
                "mail": mail or upn, "userPrincipalName": upn}
        with self._lock:
            self.users[user["id"]] = user
        return user

    def add_teams_app(self, external_id: str, display_name: str) -> dict:
        """An app of the tenant's catalog (``external_id``: its manifest id)."""
        app = {"id": str(uuid.uuid4()), "externalId": external_id, "displayName": display_name}
        with self._lock:
            self.teams_apps[app["id"]] = app
        return app

    def grant_meeting_policy(self, user: dict) -> None:
        """Grant-CsApplicationAccessPolicy: the app may make meetings on ``user``'s behalf."""
        with self._lock:
            self.meeting_policy.add(user["id"])

    def expire_tokens(self) -> None:
        """Every token issued so far now gets 401 'Lifetime validation failed'."""
        self.tokens.expire_all()

    # ---- read by the test ------------------------------------------------------------------

    def find_user(self, id_or_upn: str) -> dict | None:
        with self._lock:
            return self.users.get(id_or_upn) or next(
                (u for u in self.users.values()
                 if u["userPrincipalName"].lower() == id_or_upn.lower()), None)

    def chats_with_topic(self, topic: str) -> list[dict]:
        with self._lock:
            return [c for c in self.chats.values() if c["topic"] == topic]

    def member_ids(self, chat_id: str) -> list[str]:
        with self._lock:
            return [m["userId"] for m in self.chats[chat_id]["members"]]

    def meetings_of(self, user: dict) -> list[dict]:
        with self._lock:
            return [m for (organizer, _), m in self.meetings.items() if organizer == user["id"]]

    def app_ids(self, chat_id: str) -> list[str]:
        with self._lock:
            return [a["teamsApp"]["id"] for a in self.chats[chat_id]["installedApps"]]

    # ---- HTTP ----------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        chat = "/v1.0/chats/{chatId}"
        return [
            web.get("/v1.0/users/{userId}/chats", self._list_user_chats, name="list_user_chats"),
            web.post("/v1.0/chats", self._create_chat, name="create_chat"),
            web.get(f"{chat}/members", self._list_members, name="list_members"),
            web.post(f"{chat}/members", self._add_member, name="add_member"),
            web.get("/v1.0/users/{userId}", self._get_user, name="get_user"),
            web.get(f"{chat}/installedApps", self._list_apps, name="list_apps"),
            web.post(f"{chat}/installedApps", self._install_app, name="install_app"),
            web.post("/v1.0/users/{userId}/onlineMeetings/createOrGet",
                     self._create_or_get_meeting, name="create_or_get_meeting"),
            *self.tokens.routes(lambda: self.base_url),
        ]

    def _authorize(self, request: web.Request) -> web.Response | None:
        if not request.path.startswith("/v1.0/"):
            return None
        reason = self.tokens.check_bearer(request.headers.get("Authorization"), GRAPH)
        return None if reason is None else graph_error(401, "InvalidAuthenticationToken", reason)

    def _error_body(self, status: int, message: str) -> dict:
        return _error_json(error_code(status), message)

    def _list_user_chats(self, request: web.Request) -> web.Response:
        query = _query(request, {"$filter", "$top", "$skiptoken"})
        user = self._user_or_404(request.match_info["userId"])
        topic = _filter_value(query.get("$filter"), _TOPIC_FILTER)
        chats = [self._chat_view(c) for c in self.chats.values()
                 if any(m["userId"] == user["id"] for m in c["members"])
                 and (topic is None or c["topic"] == topic)]
        return web.json_response(self._page(request, chats, _top(query.get("$top"))))

    def _create_chat(self, request: web.Request) -> web.Response:
        body = _json_object(request, {"chatType", "topic", "members"})
        if body.get("chatType") != "group":
            raise _bad("FakeGraph makes group chats only (chatType 'group').")
        members = [self._member_from(raw) for raw in body.get("members") or []]
        if len({user["id"] for user, _ in members}) != len(members):
            raise _bad("Duplicate member.")
        if len(members) < self.min_group_members:
            raise _bad(f"A group chat needs at least {self.min_group_members} members.")
        if not any(roles == ["owner"] for _, roles in members):
            raise _bad("At least one member must be an owner.")
        chat_id = f"19:{uuid.uuid4().hex}@thread.v2"
        self.chats[chat_id] = {
            "id": chat_id, "topic": body.get("topic"), "chatType": "group",
            "createdDateTime": _now_iso(), "tenantId": self.tenant_id,
            "webUrl": f"https://teams.microsoft.com/l/chat/{quote(chat_id, safe='')}/0"
                      f"?tenantId={self.tenant_id}",
            "members": [self._member_view(chat_id, user, roles) for user, roles in members],
            "installedApps": [],
        }
        return web.json_response(self._chat_view(self.chats[chat_id]), status=201)

    def _list_members(self, request: web.Request) -> web.Response:
        members = list(self._chat_or_404(request)["members"])
        return web.json_response({"@odata.count": len(members), "value": members})

    def _add_member(self, request: web.Request) -> web.Response:
        body = _json_object(request, {"@odata.type", "roles", "user@odata.bind",
                                      "visibleHistoryStartDateTime"})
        user, roles = self._member_from(body)
        chat = self._chat_or_404(request)
        member = next((m for m in chat["members"] if m["userId"] == user["id"]), None)
        if member is None:
            member = self._member_view(chat["id"], user, roles)
            chat["members"].append(member)
        return web.json_response(member, status=201)

    def _get_user(self, request: web.Request) -> web.Response:
        _query(request, {"$select"})
        return web.json_response(self._user_or_404(request.match_info["userId"]))

    def _list_apps(self, request: web.Request) -> web.Response:
        query = _query(request, {"$filter", "$expand"})
        if query.get("$expand", "teamsApp") != "teamsApp":
            raise _bad(f"FakeGraph expands teamsApp only, not {query['$expand']!r}.")
        app_id = _filter_value(query.get("$filter"), _APP_FILTER)
        installed = [{"id": a["id"], "teamsApp": a["teamsApp"]}
                     for a in self._chat_or_404(request)["installedApps"]
                     if app_id is None or a["teamsApp"]["id"] == app_id]
        return web.json_response({"@odata.count": len(installed), "value": installed})

    def _install_app(self, request: web.Request) -> web.Response:
        bind = _json_object(request, {"teamsApp@odata.bind"}).get("teamsApp@odata.bind")
        match = _APP_BIND.match(bind) if isinstance(bind, str) else None
        if not match:
            raise _bad(f"Invalid value for teamsApp@odata.bind: {bind!r}")
        chat, app = self._chat_or_404(request), self.teams_apps.get(match["app"])
        if app is None:
            raise _refused(404, "NotFound", f"Teams app '{match['app']}' not found.")
        if any(a["teamsApp"]["id"] == app["id"] for a in chat["installedApps"]):
            raise _refused(409, "Conflict", "App is already installed in this chat.")
        installation = base64.b64encode(f"{chat['id']}##{app['id']}".encode()).decode()
        chat["installedApps"].append({"id": installation, "teamsApp": app})
        return web.Response(status=201)

    def _create_or_get_meeting(self, request: web.Request) -> web.Response:
        body = _json_object(request, {"externalId", "subject", "startDateTime", "endDateTime",
                                      "participants"})
        organizer = self.users.get(request.match_info["userId"])  # object ids only
        if organizer is None:
            raise _refused(404, "NotFound", "The user could not be found.")
        if organizer["id"] not in self.meeting_policy:
            raise _refused(403, "General", "No application access policy found for this app.")
        external_id = body.get("externalId")
        if not isinstance(external_id, str) or not external_id:
            raise _bad("externalId is required.")
        key = (organizer["id"], external_id)
        if key in self.meetings:
            return web.json_response(self.meetings[key], status=200)
        self.meetings[key] = self._meeting(organizer, external_id, body.get("subject"))
        return web.json_response(self.meetings[key], status=201)

    def _meeting(self, organizer: dict, external_id: str, subject: Any) -> dict:
        thread = f"19:meeting_{uuid.uuid4().hex}@thread.v2"
        context = quote(f'{{"Tid":"{self.tenant_id}","Oid":"{organizer["id"]}"}}', safe="")
        start = datetime.now(timezone.utc)
        return {
            "id": base64.b64encode(f"1*{organizer['id']}*0**{thread}".encode()).decode(),
            "externalId": external_id, "subject": subject if isinstance(subject, str) else None,
            "creationDateTime": _now_iso(), "startDateTime": _now_iso(),
            "endDateTime": (start + timedelta(hours=1)).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "joinWebUrl": f"https://teams.microsoft.com/l/meetup-join/{quote(thread, safe='')}/0"
                          f"?context={context}",
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "participants": {"organizer": {"upn": organizer["userPrincipalName"],
                                           "role": "presenter",
                                           "identity": {"user": {"id": organizer["id"]}}},
                             "attendees": []}}

    # ---- helpers -------------------------------------------------------------------------------

    def _member_from(self, raw: Any) -> tuple[dict, list[str]]:
        if not isinstance(raw, dict) or raw.get("@odata.type") != MEMBER_TYPE:
            raise _bad(f"Each member must be of type {MEMBER_TYPE}.")
        bind = raw.get("user@odata.bind")
        match = _USER_BIND.match(bind) if isinstance(bind, str) else None
        if not match:
            raise _bad(f"Invalid value for user@odata.bind: {bind!r}")
        if raw.get("roles") not in (["owner"], ["guest"]):
            raise _bad("Each member must have the role 'owner' or 'guest'.")
        reference = match["value"].replace("''", "'")
        user = self.find_user(reference)
        if user is None:
            raise _refused(404, "NotFound", f"User '{reference}' was not found.")
        return user, raw["roles"]

    def _member_view(self, chat_id: str, user: dict, roles: list[str]) -> dict:
        opaque = base64.b64encode(f"1##{chat_id}##{user['id']}".encode()).decode()
        return {"@odata.type": MEMBER_TYPE, "id": opaque, "roles": list(roles),
                "displayName": user["displayName"], "userId": user["id"], "email": user["mail"],
                "tenantId": self.tenant_id}

    @staticmethod
    def _chat_view(chat: dict) -> dict:
        return {k: v for k, v in chat.items() if k not in ("members", "installedApps")}

    def _chat_or_404(self, request: web.Request) -> dict:
        chat = self.chats.get(request.match_info["chatId"])
        if chat is None:
            raise _refused(404, "NotFound", "Chat not found.")
        return chat

    def _user_or_404(self, id_or_upn: str) -> dict:
        user = self.find_user(id_or_upn)
        if user is None:
            raise _refused(404, "Request_ResourceNotFound",
                                  f"Resource '{id_or_upn}' does not exist or one of its queried "
                                  "reference-property objects are not present.")
        return user

    def _page(self, request: web.Request, items: list, top: int) -> dict:
        start = int(request.query.get("$skiptoken") or 0)
        page: dict[str, Any] = {"value": items[start:start + top]}
        if start + top < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + top)
            next_query = urlencode(query, quote_via=quote)
            page["@odata.nextLink"] = f"{self.base_url}{request.path}?{next_query}"
        return page


def _query(request: web.Request, allowed: set[str]) -> Any:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise _bad(f"FakeGraph does not serve the query option(s) {unknown} here.")
    return request.query


def _filter_value(expression: str | None, shape: re.Pattern) -> str | None:
    """The literal of the one ``$filter`` shape Firebell sends here; anything else is a 400."""
    if expression is None:
        return None
    match = shape.match(expression)
    if not match:
        raise _bad(f"FakeGraph understands only the $filter {shape.pattern!r}, not {expression!r}.")
    return match["value"].replace("''", "'")


def _top(raw: str | None) -> int:
    if raw is None:
        return MAX_TOP
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise _bad(f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP}.")
    return int(raw)


def _json_object(request: web.Request, allowed: set[str]) -> dict:
    body = request[RECORD].body
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object.")
    if unknown := sorted(set(body) - allowed):
        raise _bad(f"FakeGraph does not take {unknown} in this body.")
    return body
