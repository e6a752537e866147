"""The Bot Framework Connector (REST API v3) as Microsoft Teams serves it at an activity's
``serviceUrl``: what Firebell calls there, through botbuilder (replies to the activity being
handled) and through integrations/teams_connector.py (cards posted and updated by the outbox,
rosters), plus the Azure AD token endpoint those calls authenticate with.

Usage::

    async with FakeBotConnector() as connector:
        service_url = connector.base_url          # put it in the activity's serviceUrl
        ...                                       # drive Firebell
        await connector.wait_for(lambda: len(connector.posts) == 1)
        assert connector.messages(conversation_id)[0]["text"] == "..."

With app credentials (``require_auth=True``), botbuilder asks MSAL for a token. MSAL insists on
an ``https://`` authority and, for a host it does not know, asks Microsoft's instance-discovery
service on the internet -- unless the tenant segment is ``adfs``. So start the stand-in with
``tls=True``, use ``connector.bot_settings()`` (``TO_CHANNEL_FROM_BOT_LOGIN_URL =
https://127.0.0.1:<port>/adfs``) and set ``REQUESTS_CA_BUNDLE`` to ``connector.ca_pem_path``
(``requests``, under MSAL and msrest, reads it on every call). Firebell fetches that token off
the loop (``bot/app_token.py``); a slow or failing token endpoint: ``hang_next``/``fail_next``.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from typing import Any

import trustme
from aiohttp import web

from tests.fakes.aad_token import AadTokenIssuer
from tests.fakes.http_stand_in import RECORD, HttpStandIn

# Teams' "per bot per thread" limits (learn.microsoft.com/microsoftteams/platform/bots/how-to/
# rate-limit): (window seconds, operations allowed) for sending (post, reply, update) and for
# reading a roster. A "thread" is a 1:1 chat, a group chat or a channel. The docs promise no
# Retry-After; the stand-in sends one so that a client honouring it can be tested.
TEAMS_PER_THREAD_LIMITS = {
    "send": ((1, 7), (2, 8), (30, 60), (3600, 1800)),
    "members": ((1, 14), (2, 16), (30, 120), (3600, 3600)),
}
_SCENARIO_OF_KIND = {"post": "send", "reply": "send", "update": "send", "members": "members"}


def thread_of(conversation_id: str) -> str:
    """'19:x@thread.tacv2;messageid=1700000000000' -> '19:x@thread.tacv2': rosters and message
    ids belong to the channel, whichever of its threads addresses them."""
    return conversation_id.split(";", 1)[0]


class FakeBotConnector(HttpStandIn):
    """Endpoints (the names are ``RecordedRequest.kind``; ids arrive percent-encoded):
      POST /v3/conversations/{conversationId}/activities        post    -> {id}
      POST /v3/conversations/{conversationId}/activities/{id}   reply   -> {id}
      PUT  /v3/conversations/{conversationId}/activities/{id}   update  -> {id} | 404
      GET  /v3/conversations/{conversationId}/members           members | 404
      POST /{tenant}/oauth2/v2.0/token (+ OpenID discovery)     token (AadTokenIssuer)
    """

    def __init__(self, *, tls: bool = False, ca: trustme.CA | None = None,
                 require_auth: bool = False,
                 app_id: str = "00000000-0000-0000-0000-00000000b07a",
                 app_password: str = "fake-bot-password",
                 oauth_scope: str = "https://api.botframework.com") -> None:
        super().__init__(tls=tls, ca=ca)
        self.require_auth = require_auth
        self.app_id, self.app_password, self.oauth_scope = app_id, app_password, oauth_scope
        self.tokens = AadTokenIssuer({app_id: app_password})
        self._activities: dict[str, dict] = {}  # id -> {"conversation_id", "activity"}
        self._order: dict[str, list[str]] = defaultdict(list)  # conversation id -> activity ids
        self.posts: list[dict] = []  # every new message: conversation_id, id, kind, activity, time
        self.updates: list[dict] = []
        self.rosters: dict[str, list[dict]] = {}  # channel or chat id -> members
        self._limits: dict[tuple[str, str], deque[float]] | None = None  # see enforce_rate_limits
        self.throttled = 0  # 429s answered by the rate limits (not by fail_next)
        self._last_id = 0

    # ---- set up by the test --------------------------------------------------------------------

    def set_roster(self, conversation_id: str, members: list[dict]) -> None:
        """Members answered for a chat or a channel (any thread in it)."""
        with self._lock:
            self.rosters[thread_of(conversation_id)] = list(members)

    def enforce_rate_limits(self, enabled: bool = True) -> None:
        """Answer 429 + Retry-After when Teams' per-thread limits would be exceeded."""
        with self._lock:
            self._limits = defaultdict(deque) if enabled else None

    def bot_settings(self, **overrides: Any) -> dict:
        """botbuilder settings that authenticate its outgoing calls against this stand-in
        (needs tls=True and REQUESTS_CA_BUNDLE; see the module docstring)."""
        if not self.tls:
            raise RuntimeError("MSAL accepts https authorities only: FakeBotConnector(tls=True)")
        return {"APP_ID": self.app_id, "APP_PASSWORD": self.app_password,
                "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"{self.base_url}/adfs",
                "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": self.oauth_scope, **overrides}

    # ---- read by the test ------------------------------------------------------------------

    def messages(self, conversation_id: str) -> list[dict]:
        """The latest version of each message posted to exactly this conversation, in order."""
        with self._lock:
            return [dict(self._activities[i]["activity"]) for i in self._order[conversation_id]]

    def count_by_conversation(self) -> dict[str, int]:
        """How many messages were posted (not updated) per conversation id."""
        with self._lock:
            counts: dict[str, int] = defaultdict(int)
            for post in self.posts:
                counts[post["conversation_id"]] += 1
            return dict(counts)

    # ---- HTTP ----------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        conversation = "/v3/conversations/{conversationId}"
        return [
            web.post(f"{conversation}/activities", self._post, name="post"),
            web.post(f"{conversation}/activities/{{activityId}}", self._reply, name="reply"),
            web.put(f"{conversation}/activities/{{activityId}}", self._update, name="update"),
            web.get(f"{conversation}/members", self._members, name="members"),
            *self.tokens.routes(lambda: self.base_url),
        ]

    def _authorize(self, request: web.Request) -> web.Response | None:
        if not (self.require_auth and request.path.startswith("/v3/")):
            return None
        if self.tokens.check_bearer(request.headers.get("Authorization"), self.oauth_scope) is None:
            return None
        # The real connector answers 401 with ASP.NET's stock body.
        return web.json_response({"message": "Authorization has been denied for this request."},
                                 status=401)

    def _post(self, request: web.Request) -> web.Response:
        return self._store_new(request, request[RECORD].body)

    def _reply(self, request: web.Request) -> web.Response:
        body = request[RECORD].body
        if _is_activity(body):
            body = dict(body, replyToId=request.match_info["activityId"])
        return self._store_new(request, body)

    def _update(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        activity_id = request.match_info["activityId"]
        activity = request[RECORD].body
        refused = self._throttled(request, conversation_id) or _bad_activity(activity)
        if refused:
            return refused
        entry = self._activities.get(activity_id)
        if entry is None or thread_of(entry["conversation_id"]) != thread_of(conversation_id):
            return _error(404, "ActivityNotFound", f"Activity {activity_id} not found.")
        entry["activity"] = dict(activity, id=activity_id)
        self.updates.append({"conversation_id": conversation_id, "id": activity_id,
                             "activity": entry["activity"], "time": time.time()})
        return web.json_response({"id": activity_id})

    def _members(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        if refused := self._throttled(request, conversation_id):
            return refused
        roster = self.rosters.get(thread_of(conversation_id))
        if roster is None:
            return _error(404, "ConversationNotFound", "Conversation not found.")
        return web.json_response(roster)

    def _store_new(self, request: web.Request, activity: Any) -> web.Response:
        conversation_id = request.match_info["conversationId"]
        refused = self._throttled(request, conversation_id) or _bad_activity(activity)
        if refused:
            return refused
        # Teams message ids are millisecond timestamps: unique and increasing.
        self._last_id = max(int(time.time() * 1000), self._last_id + 1)
        activity_id = str(self._last_id)
        activity = dict(activity, id=activity_id)
        self._activities[activity_id] = {"conversation_id": conversation_id, "activity": activity}
        self._order[conversation_id].append(activity_id)
        self.posts.append({"conversation_id": conversation_id, "id": activity_id,
                           "kind": request[RECORD].kind, "activity": activity, "time": time.time()})
        return web.json_response({"id": activity_id})

    def _throttled(self, request: web.Request, conversation_id: str) -> web.Response | None:
        """Teams' per-thread limits, when enforced: None, or the 429 to answer."""
        scenario = _SCENARIO_OF_KIND[request[RECORD].kind]
        if self._limits is None:
            return None
        now, windows = time.monotonic(), TEAMS_PER_THREAD_LIMITS[scenario]
        events = self._limits[(scenario, thread_of(conversation_id))]
        while events and events[0] <= now - windows[-1][0]:
            events.popleft()
        wait = 0.0
        for seconds, allowed in windows:
            recent = [t for t in events if t > now - seconds]
            if len(recent) >= allowed:  # free again once the oldest of them leaves the window
                wait = max(wait, recent[-allowed] + seconds - now)
        if wait <= 0:
            events.append(now)
            return None
        self.throttled += 1
        return _error(429, "Throttled", "Too many requests for this conversation.",
                      {"Retry-After": str(max(1, math.ceil(wait)))})


def _is_activity(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("type"))


def _bad_activity(body: Any) -> web.Response | None:
    return None if _is_activity(body) else _error(400, "BadArgument",
                                                   "Activity is missing or has no type.")


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)
