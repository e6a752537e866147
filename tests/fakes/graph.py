"""A fake Microsoft Graph v1.0 (chats, members, chat apps, users) plus its Azure AD
client-credentials token endpoint, as Firebell uses them for war-room chats.

Layout (one server, one base URL)::

    POST {base}/{tenant}/oauth2/v2.0/token                      token
    GET  {base}/{tenant}/v2.0/.well-known/openid-configuration   (for MSAL)
    POST {base}/v1.0/chats                                       create_chat
    GET  {base}/v1.0/chats/{chatId}                              get_chat
    GET  {base}/v1.0/chats/{chatId}/members                      list_members
    POST {base}/v1.0/chats/{chatId}/members                      add_member
    GET  {base}/v1.0/chats/{chatId}/installedApps                list_apps
    POST {base}/v1.0/chats/{chatId}/installedApps                install_app
    GET  {base}/v1.0/users/{idOrUpn}                             get_user
    GET  {base}/v1.0/users/{idOrUpn}/chats                       list_user_chats

(the names on the right are ``RecordedRequest.kind`` and the ``kind=`` of fault
injection).  Configure Firebell with ``AZURE_AUTHORITY_HOST={base}`` and
``GRAPH_BASE_URL={base}/v1.0`` (``graph.env()``), tenant/client id/secret from
``graph.tenant_id`` / ``graph.client_id`` / ``graph.client_secret``.

MSAL: it refuses ``http://`` authorities and, for a host it does not know, asks
Microsoft's instance-discovery service on the internet first.  If Firebell uses
MSAL, start ``FakeGraph(tls=True)``, set ``REQUESTS_CA_BUNDLE=graph.ca_pem_path``
and build the app with ``instance_discovery=False``.  Plain HTTP clients
(httpx/aiohttp) can use ``http://`` and skip all that.

Behaviour taken from the Graph docs (microsoft-graph-docs-contrib, api-reference/v1.0):

* Create chat (chat-post.md): ``chatType`` is ``group`` or ``oneOnOne``; every
  participant must be listed in ``members`` as ``#microsoft.graph.aadUserConversationMember``
  with ``user@odata.bind`` = ``https://graph.microsoft.com/v1.0/users('<id or UPN>')``;
  each member must have the role ``owner`` or ``guest``; ``topic`` only for group
  chats; only one one-on-one chat can exist between two users -- creating it again
  returns the existing chat.  The docs give no minimum for group chats (their
  examples use 3); a reported quirk (microsoft-graph-docs-contrib issue #1622) is
  that a *2-member group chat* can be created but later "add member" fails with
  RosterAddMemberBlocked.  The fake therefore rejects group chats under
  ``min_group_members`` (default 3) with 400, which is the safe side.
* List chats (chat-list.md): ``GET /users/{id | userPrincipalName}/chats`` with
  application permissions; ``$top`` max 50, ``@odata.nextLink`` paging, ``$expand=members``,
  ``$filter``.  Filters seen in docs and real clients and supported here:
  ``topic eq '...'``, ``chatType eq '...'``, ``members/any(o: o/displayName eq '...')``,
  ``installedApps/any(a:a/teamsApp/id eq '...')``, joined with ``and``; anything
  else is a 400, so an unsupported filter fails loudly.
* List apps in chat (chat-list-installedapps.md): ``$expand=teamsApp,teamsAppDefinition``
  and ``$filter=teamsApp/externalId eq '<manifest id>'`` (also ``teamsApp/id eq``).
* Install app in chat: body ``teamsApp@odata.bind`` =
  ``https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{id}`` -> 201, no body.
  (The fake also accepts the same binds in an ``installedApps`` list of the
  create-chat body.)

Not verified against the live service (choices made here): unknown users in a
create/add request -> 404 ``NotFound``; adding an existing member -> 201 with the
existing member (idempotent); installing an app twice -> 409 ``Conflict``.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import quote, urlencode

import trustme
from aiohttp import web

from tests.fakes.bot_connector import RECORD, AadTokenIssuer, LoopbackServer, _Fault

GRAPH = "https://graph.microsoft.com"
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
MAX_TOP = 50


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def graph_error(status: int, code: str, message: str, headers: Optional[dict] = None) -> web.Response:
    """Graph's error shape, innerError included."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": _now_iso()[:19], "request-id": str(uuid.uuid4())},
        }
    }
    return web.json_response(body, status=status, headers=headers)


class GraphInputError(Exception):
    """A request Graph would refuse: carries the HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        return graph_error(self.status, self.code, self.message)


def _bad(message: str) -> GraphInputError:
    return GraphInputError(400, "BadRequest", message)


# ---- OData helpers ------------------------------------------------------------------------

_USER_BIND = re.compile(r"^https://graph\.microsoft\.com/(?:v1\.0|beta)/users(?:\('(?P<a>[^']+)'\)|/(?P<b>[^/]+))$")
_APP_BIND = re.compile(r"^https://graph\.microsoft\.com/(?:v1\.0|beta)/appCatalogs/teamsApps/(?P<id>[^/]+)$")
_LITERAL = r"'(?P<value>(?:[^']|'')*)'"
_CHAT_FILTERS = {
    "topic": re.compile(rf"^topic\s+eq\s+{_LITERAL}$", re.I),
    "chatType": re.compile(rf"^chatType\s+eq\s+{_LITERAL}$", re.I),
    "member": re.compile(rf"^members/any\((?P<v>\w+)\s*:\s*(?P=v)/displayName\s+eq\s+{_LITERAL}\)$", re.I),
    "app": re.compile(rf"^installedApps/any\((?P<v>\w+)\s*:\s*(?P=v)/teamsApp/id\s+eq\s+{_LITERAL}\)$", re.I),
}
_APP_FILTERS = {
    "externalId": re.compile(rf"^teamsApp/externalId\s+eq\s+{_LITERAL}$", re.I),
    "id": re.compile(rf"^teamsApp/id\s+eq\s+{_LITERAL}$", re.I),
}


def _split_and(expression: str) -> list[str]:
    """Split an OData filter on top-level ' and ' (not inside quotes or parentheses)."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    lower = expression.lower()
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and lower.startswith(" and ", i):
            parts.append(expression[start:i].strip())
            start = i = i + 5
            continue
        i += 1
    parts.append(expression[start:].strip())
    return parts


def _parse_filter(expression: Optional[str], grammar: dict[str, re.Pattern]) -> list[tuple[str, str]]:
    """[(clause name, literal value)] or GraphInputError for anything unsupported."""
    if not expression:
        return []
    clauses = []
    for part in _split_and(expression):
        for name, pattern in grammar.items():
            match = pattern.match(part)
            if match:
                clauses.append((name, match.group("value").replace("''", "'")))
                break
        else:
            raise _bad(f"Invalid filter clause: {part}")
    return clauses


def _user_ref(bind: Any) -> str:
    match = _USER_BIND.match(bind or "") if isinstance(bind, str) else None
    if not match:
        raise _bad(f"Invalid value for user@odata.bind: {bind!r}")
    return match.group("a") or match.group("b")


# ---- the fake -----------------------------------------------------------------------------


class FakeGraph(LoopbackServer):
    """Microsoft Graph v1.0 subset + AAD token endpoint.  See the module docstring."""

    def __init__(
        self,
        *,
        tenant_id: str = "11111111-2222-3333-4444-555555555555",
        client_id: str = "99999999-8888-7777-6666-000000000001",
        client_secret: str = "fake-graph-secret",
        tls: bool = False,
        ca: Optional[trustme.CA] = None,
        min_group_members: int = 3,
        chat_page_size: int = 20,
        token_lifetime: int = 3599,
    ) -> None:
        super().__init__(tls=tls, ca=ca)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.min_group_members = min_group_members
        self.chat_page_size = chat_page_size
        self.tokens = AadTokenIssuer(
            {client_id: client_secret}, tenant=tenant_id, lifetime=token_lifetime
        )
        self.users: dict[str, dict] = {}  # id -> user
        self.teams_apps: dict[str, dict] = {}  # catalog id -> teamsApp
        self.chats: dict[str, dict] = {}  # id -> chat, with "members" and "installedApps"

    # ---- test-facing setup -----------------------------------------------------------

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def env(self) -> dict[str, str]:
        return {"AZURE_AUTHORITY_HOST": self.base_url, "GRAPH_BASE_URL": self.graph_url}

    def add_user(
        self,
        display_name: str,
        *,
        upn: Optional[str] = None,
        mail: Optional[str] = None,
        id: Optional[str] = None,
    ) -> dict:
        given, _, surname = display_name.partition(" ")
        upn = upn or f"{given.lower()}.{(surname or 'user').lower()}@contoso.example"
        user = {
            "id": id or str(uuid.uuid4()),
            "displayName": display_name,
            "givenName": given,
            "surname": surname or None,
            "mail": mail or upn,
            "userPrincipalName": upn,
        }
        with self._lock:
            self.users[user["id"]] = user
        return user

    def add_teams_app(self, external_id: str, display_name: str, *, id: Optional[str] = None) -> dict:
        """Register an app in the tenant catalog (external_id = the manifest id)."""
        app = {
            "id": id or str(uuid.uuid4()),
            "externalId": external_id,
            "displayName": display_name,
            "distributionMethod": "organization",
        }
        with self._lock:
            self.teams_apps[app["id"]] = app
        return app

    def find_user(self, id_or_upn: str) -> Optional[dict]:
        with self._lock:
            if id_or_upn in self.users:
                return self.users[id_or_upn]
            wanted = id_or_upn.lower()
            for user in self.users.values():
                if user["userPrincipalName"].lower() == wanted:
                    return user
        return None

    # ---- routes / auth ---------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        chat = "/v1.0/chats/{chatId}"
        return [
            web.post("/v1.0/chats", self._create_chat, name="create_chat"),
            web.get(chat, self._get_chat, name="get_chat"),
            web.get(f"{chat}/members", self._list_members, name="list_members"),
            web.post(f"{chat}/members", self._add_member, name="add_member"),
            web.get(f"{chat}/installedApps", self._list_apps, name="list_apps"),
            web.post(f"{chat}/installedApps", self._install_app, name="install_app"),
            web.get("/v1.0/users/{userId}", self._get_user, name="get_user"),
            web.get("/v1.0/users/{userId}/chats", self._list_user_chats, name="list_user_chats"),
            *self.tokens.routes(lambda: self.base_url),
        ]

    def _authorize(self, request: web.Request) -> Optional[web.Response]:
        if not request.path.startswith("/v1.0/"):
            return None
        reason = self.tokens.check_bearer(request.headers.get("Authorization"), GRAPH)
        if reason is None:
            return None
        return graph_error(401, "InvalidAuthenticationToken", reason)

    def _fault_response(self, fault: _Fault) -> web.Response:
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after else None
        if fault.status == 429:
            return graph_error(429, "TooManyRequests", "Too many requests.", headers)
        if fault.status == 503:
            return graph_error(503, "ServiceUnavailable", "Service unavailable.", headers)
        return graph_error(fault.status, "InternalServerError", "Injected fault.", headers)

    @staticmethod
    def _body(request: web.Request) -> dict:
        body = request[RECORD].body
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object.")
        return body

    # ---- chats -------------------------------------------------------------------------

    async def _create_chat(self, request: web.Request) -> web.Response:
        try:
            body = self._body(request)
            chat_type = body.get("chatType")
            members = self._members_from_request(body.get("members"))
            self._check_chat_shape(chat_type, body.get("topic"), members)
            with self._lock:
                chat = self._existing_one_on_one(members) if chat_type == "oneOnOne" else None
                chat = chat or self._new_chat(chat_type, body.get("topic"), members)
                for bind in body.get("installedApps") or []:
                    self._install(chat, (bind or {}).get("teamsApp@odata.bind"))
        except GraphInputError as error:
            return error.response()
        return web.json_response(self._chat_view(chat), status=201)

    def _members_from_request(self, raw_members: Any) -> list[tuple[dict, list[str]]]:
        """Validate members; returns [(user, roles)]."""
        if not isinstance(raw_members, list) or not raw_members:
            raise _bad("members is required.")
        resolved, seen = [], set()
        for raw in raw_members:
            user, roles = self._member_from_request(raw)
            if user["id"] in seen:
                raise _bad(f"Duplicate member {user['id']}.")
            seen.add(user["id"])
            resolved.append((user, roles))
        return resolved

    def _member_from_request(self, raw: Any) -> tuple[dict, list[str]]:
        if not isinstance(raw, dict) or raw.get("@odata.type") != MEMBER_TYPE:
            raise _bad(f"Each member must be of type {MEMBER_TYPE}.")
        reference = _user_ref(raw.get("user@odata.bind"))
        roles = raw.get("roles")
        if not isinstance(roles, list) or len(roles) != 1 or roles[0] not in ("owner", "guest"):
            raise _bad("Each member must be assigned the role 'owner' or 'guest'.")
        user = self.find_user(reference)
        if user is None:
            raise GraphInputError(404, "NotFound", f"User '{reference}' was not found.")
        return user, roles

    def _check_chat_shape(self, chat_type: Any, topic: Any, members: list) -> None:
        if chat_type not in ("group", "oneOnOne"):
            raise _bad("chatType must be 'group' or 'oneOnOne'.")
        if not any(roles == ["owner"] for _, roles in members):
            raise _bad("At least one member must be an owner.")
        if chat_type == "oneOnOne":
            if len(members) != 2:
                raise _bad("A oneOnOne chat must have exactly two members.")
            if topic:
                raise _bad("topic can only be set on group chats.")
        elif len(members) < self.min_group_members:
            raise _bad(f"A group chat needs at least {self.min_group_members} members.")

    def _existing_one_on_one(self, members: list) -> Optional[dict]:
        wanted = {user["id"] for user, _ in members}
        for chat in self.chats.values():
            if chat["chatType"] == "oneOnOne" and {m["userId"] for m in chat["members"]} == wanted:
                return chat
        return None

    def _new_chat(self, chat_type: str, topic: Optional[str], members: list) -> dict:
        if chat_type == "oneOnOne":
            ids = sorted(user["id"] for user, _ in members)
            chat_id = f"19:{ids[0]}_{ids[1]}@unq.gbl.spaces"
        else:
            chat_id = f"19:{uuid.uuid4().hex}@thread.v2"
        now = _now_iso()
        chat = {
            "id": chat_id,
            "topic": topic if chat_type == "group" else None,
            "createdDateTime": now,
            "lastUpdatedDateTime": now,
            "chatType": chat_type,
            "webUrl": f"https://teams.microsoft.com/l/chat/{quote(chat_id, safe='')}/0?tenantId={self.tenant_id}",
            "tenantId": self.tenant_id,
            "isHiddenForAllMembers": False,
            "members": [],
            "installedApps": [],
        }
        for user, roles in members:
            chat["members"].append(self._member_view(chat_id, user, roles))
        self.chats[chat_id] = chat
        return chat

    def _member_view(self, chat_id: str, user: dict, roles: list[str]) -> dict:
        opaque = base64.b64encode(f"1##{chat_id}##{user['id']}".encode()).decode()
        return {
            "@odata.type": MEMBER_TYPE,
            "id": opaque,
            "roles": list(roles),
            "displayName": user["displayName"],
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
            "userId": user["id"],
            "email": user["mail"],
            "tenantId": self.tenant_id,
        }

    def _chat_view(self, chat: dict, expand_members: bool = False) -> dict:
        view = {k: v for k, v in chat.items() if k not in ("members", "installedApps")}
        if expand_members:
            view["members"] = list(chat["members"])
        return view

    def _chat_or_404(self, request: web.Request) -> dict:
        chat = self.chats.get(request.match_info["chatId"])
        if chat is None:
            raise GraphInputError(404, "NotFound", "Chat not found.")
        return chat

    async def _get_chat(self, request: web.Request) -> web.Response:
        try:
            with self._lock:
                chat = self._chat_or_404(request)
                view = self._chat_view(chat, "members" in request.query.get("$expand", ""))
        except GraphInputError as error:
            return error.response()
        view["@odata.context"] = f"{GRAPH}/v1.0/$metadata#chats/$entity"
        return web.json_response(view)

    # ---- members -----------------------------------------------------------------------

    async def _list_members(self, request: web.Request) -> web.Response:
        try:
            with self._lock:
                members = list(self._chat_or_404(request)["members"])
        except GraphInputError as error:
            return error.response()
        return web.json_response({"@odata.count": len(members), "value": members})

    async def _add_member(self, request: web.Request) -> web.Response:
        try:
            body = self._body(request)
            user, roles = self._member_from_request(body)
            with self._lock:
                chat = self._chat_or_404(request)
                if chat["chatType"] == "oneOnOne":
                    raise _bad("Members cannot be added to a oneOnOne chat.")
                member = next((m for m in chat["members"] if m["userId"] == user["id"]), None)
                if member is None:
                    member = self._member_view(chat["id"], user, roles)
                    chat["members"].append(member)
                    chat["lastUpdatedDateTime"] = _now_iso()
        except GraphInputError as error:
            return error.response()
        return web.json_response(member, status=201)

    # ---- a user's chats ------------------------------------------------------------------

    async def _list_user_chats(self, request: web.Request) -> web.Response:
        try:
            user = self._user_or_404(request.match_info["userId"])
            clauses = _parse_filter(request.query.get("$filter"), _CHAT_FILTERS)
            top = self._top(request)
            with self._lock:
                chats = [
                    c
                    for c in self.chats.values()
                    if any(m["userId"] == user["id"] for m in c["members"])
                    and all(self._chat_matches(c, name, value) for name, value in clauses)
                ]
                expand = "members" in request.query.get("$expand", "")
                views = [self._chat_view(c, expand) for c in chats]
        except GraphInputError as error:
            return error.response()
        return web.json_response(self._page(request, views, top))

    @staticmethod
    def _chat_matches(chat: dict, clause: str, value: str) -> bool:
        if clause == "topic":
            return chat["topic"] == value
        if clause == "chatType":
            return chat["chatType"].lower() == value.lower()
        if clause == "member":
            return any(m["displayName"] == value for m in chat["members"])
        return any(a["teamsApp"]["id"] == value for a in chat["installedApps"])  # "app"

    def _top(self, request: web.Request) -> int:
        raw = request.query.get("$top")
        if raw is None:
            return self.chat_page_size
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
            raise _bad(f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP}.")
        return int(raw)

    def _page(self, request: web.Request, items: list, top: int) -> dict:
        start = int(request.query.get("$skiptoken") or 0)
        result: dict[str, Any] = {"@odata.count": len(items[start : start + top])}
        result["value"] = items[start : start + top]
        if start + top < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + top)
            result["@odata.nextLink"] = f"{self.base_url}{request.path}?{urlencode(query, quote_via=quote)}"
        return result

    # ---- apps in chats -------------------------------------------------------------------

    async def _install_app(self, request: web.Request) -> web.Response:
        try:
            body = self._body(request)
            with self._lock:
                self._install(self._chat_or_404(request), body.get("teamsApp@odata.bind"))
        except GraphInputError as error:
            return error.response()
        return web.Response(status=201)

    def _install(self, chat: dict, bind: Any) -> None:
        match = _APP_BIND.match(bind) if isinstance(bind, str) else None
        if not match:
            raise _bad(f"Invalid value for teamsApp@odata.bind: {bind!r}")
        app = self.teams_apps.get(match.group("id"))
        if app is None:
            raise GraphInputError(404, "NotFound", f"Teams app '{match.group('id')}' not found.")
        if any(a["teamsApp"]["id"] == app["id"] for a in chat["installedApps"]):
            raise GraphInputError(409, "Conflict", "App is already installed in this chat.")
        installation_id = base64.b64encode(f"{chat['id']}##{app['id']}".encode()).decode()
        chat["installedApps"].append({"id": installation_id, "teamsApp": app})

    async def _list_apps(self, request: web.Request) -> web.Response:
        try:
            clauses = _parse_filter(request.query.get("$filter"), _APP_FILTERS)
            expand = request.query.get("$expand", "")
            with self._lock:
                apps = list(self._chat_or_404(request)["installedApps"])
        except GraphInputError as error:
            return error.response()
        apps = [a for a in apps if all(a["teamsApp"][field] == value for field, value in clauses)]
        return web.json_response({"@odata.count": len(apps), "value": [self._app_view(a, expand) for a in apps]})

    @staticmethod
    def _app_view(installation: dict, expand: str) -> dict:
        app = installation["teamsApp"]
        view: dict[str, Any] = {"id": installation["id"]}
        if "teamsAppDefinition" in expand:
            view["teamsAppDefinition"] = {
                "id": base64.b64encode(f"{app['id']}##1.0.0".encode()).decode(),
                "teamsAppId": app["id"],
                "displayName": app["displayName"],
                "version": "1.0.0",
                "publishingState": "published",
            }
        if re.search(r"(^|,)\s*teamsApp\s*(,|$)", expand):
            view["teamsApp"] = dict(app)
        return view

    # ---- users ---------------------------------------------------------------------------

    def _user_or_404(self, id_or_upn: str) -> dict:
        user = self.find_user(id_or_upn)
        if user is None:
            raise GraphInputError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{id_or_upn}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return user

    async def _get_user(self, request: web.Request) -> web.Response:
        try:
            user = self._user_or_404(request.match_info["userId"])
        except GraphInputError as error:
            return error.response()
        return web.json_response(dict(user, **{"@odata.context": f"{GRAPH}/v1.0/$metadata#users/$entity"}))

    # ---- assertion helpers -----------------------------------------------------------

    def chats_with_topic(self, topic: str) -> list[dict]:
        with self._lock:
            return [c for c in self.chats.values() if c["topic"] == topic]

    def expire_tokens(self) -> None:
        """Every token issued so far now gets 401 'Lifetime validation failed'."""
        self.tokens.expire_all()

    def member_ids(self, chat_id: str) -> list[str]:
        with self._lock:
            return [m["userId"] for m in self.chats[chat_id]["members"]]

    def app_ids(self, chat_id: str) -> list[str]:
        with self._lock:
            return [a["teamsApp"]["id"] for a in self.chats[chat_id]["installedApps"]]


def user_bind(user_id_or_upn: str) -> str:
    """The user@odata.bind value Graph expects."""
    return f"{GRAPH}/v1.0/users('{user_id_or_upn}')"


def app_bind(catalog_app_id: str) -> str:
    return f"{GRAPH}/v1.0/appCatalogs/teamsApps/{catalog_app_id}"


def member_payload(user_id_or_upn: str, role: str = "owner") -> dict:
    return {"@odata.type": MEMBER_TYPE, "roles": [role], "user@odata.bind": user_bind(user_id_or_upn)}


__all__ = ["FakeGraph", "graph_error", "user_bind", "app_bind", "member_payload"]
