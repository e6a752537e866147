"""FakeJira: a small, real HTTP server speaking the slice of Jira Cloud's REST API
that Firebell reaches through the ``jira`` library (3.10.5).

It is a test double for the *remote service*, not for Firebell: Firebell's real
``jira.JIRA`` client talks real HTTP to it on 127.0.0.1.

Pointing a client at it
-----------------------
::

    async with FakeJira() as fake:                 # listens on 127.0.0.1:<free port>
        fake.add_project("CHK")
        fake.add_user("ana@example.com", account_id="acc-ana")
        client = await asyncio.to_thread(
            JIRA, server=fake.url, basic_auth=(fake.email, fake.api_token),
            max_retries=0, timeout=(2, 10))
        issue = await asyncio.to_thread(client.create_issue, fields={...})

The ``jira`` library is synchronous (``requests``).  Called directly from a
coroutine it blocks the event loop, and this fake (which runs on that same loop)
can then never answer: always go through ``asyncio.to_thread`` (Firebell must do
the same in production code, for the same reason).

What the library sends on Jira Cloud (read in jira/client.py 3.10.5 and checked
by ``test_fake_jira.py`` against this server's request log)
-------------------------------------------------------------------------------
* ``JIRA(server, basic_auth=...)``: exactly one request, ``GET
  /rest/api/2/serverInfo`` (``get_server_info=True``).  Its ``deploymentType``
  ("Cloud") is what switches the library to Cloud behaviour.  Nothing else
  (``validate=False``, ``check_update=False`` by default).
* ``create_issue(fields={project: {key}, issuetype: {name}, ...})``: ``POST
  /rest/api/2/issue`` then, because ``prefetch=True``, ``GET
  /rest/api/2/issue/{key}``.  (A project given as a plain string adds ``GET
  /rest/api/2/project/{key}``; an issue type given as a plain string adds a
  lookup too.)
* ``search_issues(jql)`` on Cloud delegates to ``enhanced_search_issues``:
  ``GET /rest/api/2/search/jql?jql=..&fields=*all&maxResults=50`` (api **2**,
  not 3: the path is built from ``rest_api_version``, default "2"), preceded
  once per client by ``GET /rest/api/2/field`` (field-name cache).  Pagination
  is by ``nextPageToken`` (no ``startAt``; ``startAt != 0`` raises).  Only
  ``maxResults=0``/``False`` makes the library follow ``nextPageToken`` (in
  pages of 100); with the default 50 you get the first page only.
* ``create_issue_link(type, inwardIssue, outwardIssue)``: ``GET
  /rest/api/2/issueLinkType`` on *every* call (the cache check
  ``hasattr(self, "self._cached_issue_link_types")`` is always False), then
  ``POST /rest/api/2/issueLink``.  Jira's naming trap, reproduced here:
  ``inwardIssue=A, outwardIssue=B`` with type "Blocks" means **A blocks B**;
  ``GET`` of A then lists ``{"outwardIssue": B}`` and B lists ``{"inwardIssue": A}``.
* ``issue(key)``: ``GET /rest/api/2/issue/{key}``.
* ``search_users(query=email)``: ``GET /rest/api/2/user/search?query=..&
  includeActive=True&includeInactive=False&maxResults=50``.
* ``transitions(key)`` / ``transition_issue(key, "Done")``: ``GET`` then ``POST
  /rest/api/2/issue/{key}/transitions``.
* With ``get_server_info=False`` the client is *not* Cloud: ``search_issues``
  then calls the removed ``/rest/api/2/search`` (this fake answers 410, as
  Cloud does) and ``enhanced_search_issues`` silently returns ``None``.

The library's own retries and sleeps (jira/resilientsession.py)
--------------------------------------------------------------
``ResilientSession`` retries, **with blocking ``time.sleep``**, when:

* the answer is 429, or 503 *with* ``Retry-After``: sleep ``min(60, 2 *
  max(Retry-After, 1)) * uniform(0.5, 1)`` (a 429 without ``Retry-After``:
  ``min(60, 10 * 2**attempt) * uniform(0.5, 1)``); a 503 without
  ``Retry-After`` and any other 5xx are not retried;
* ``requests.ConnectionError`` (refused, reset, *and "answer lost"* after a
  POST): sleep ``min(60, 10 * 2**attempt) * uniform(0.5, 1)``, i.e. 10-20 s,
  20-40 s, 30-60 s.  A POST whose answer was lost is **sent again**: with the
  default ``max_retries=3`` a lost ``create_issue`` answer creates a duplicate
  issue (the self-test shows the duplicate).
* ``requests.ReadTimeout`` is not retried (raised at once).
* ``Retry-After`` must be an integer: an HTTP-date makes ``int()`` raise
  ``ValueError`` inside the library.
* ``max_retries`` (default 3) applies to every request; ``timeout`` (default
  ``None`` = wait forever) is passed to every request; ``max_retry_delay`` (60)
  is not a constructor argument (``client._session.max_retry_delay``).

So that Firebell, not the library, decides when to retry and how long to wait::

    JIRA(server=url, basic_auth=(email, token), max_retries=0, timeout=(3.05, 10))

``max_retries=0``: every 429/503/connection error surfaces at once as
``JIRAError`` (``.status_code``, ``.response.headers["Retry-After"]``) or
``requests.ConnectionError`` and nothing sleeps inside a worker thread; a
``timeout`` bounds a hung server.  Keep ``get_server_info=True`` (the default)
so the client is in Cloud mode; the price is that the constructor itself makes
that one request (it can raise, so build the client with the same retry policy
as any other call).  The self-test ``test_library_retry_behaviour_*`` cases are
the evidence for every statement above.

Error shapes answered (Jira's): ``{"errorMessages": [...], "errors": {field:
msg}}``; wrong basic auth -> 401 text ``Client must be authenticated to access
this resource.``; JQL errors -> 400 with ``errorMessages``; 429 carries
``Retry-After`` and ``X-RateLimit-*``; 503 carries ``{"errorMessage": ...}``.

JQL subset understood (anything else -> 400, Jira-shaped): clauses joined by
``AND`` on ``project``, ``key``/``issuekey``, ``labels``, ``summary``/``text``
(``~``), ``status``, ``statusCategory``, ``issuetype``/``type``, ``assignee``
(accountId or ``EMPTY``), with ``=``, ``!=``, ``in (...)``, ``not in (...)``,
plus ``ORDER BY key|created|updated|duedate [ASC|DESC]`` (ascending unless DESC).  ``~`` matches whole
words case-insensitively (``word*`` for a prefix), without Jira's stemming.
Without ``ORDER BY`` results come newest first.  Unknown project -> 400 "The
value 'X' does not exist for the field 'project'."; a missing issue key in
``key in (...)`` -> 400, as Jira does.

The generic machinery (request log, fault queue, start/stop/down/come_back) is
``HttpFake`` at the top of this module; ``tests/fakes/pagerduty.py`` reuses it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict, MultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---------------------------------------------------------------------------
# Generic HTTP-fake machinery (also used by tests/fakes/pagerduty.py)
# ---------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake received it, for assertions."""

    operation: str  # e.g. "create"; names are listed on each fake class
    method: str
    path: str
    query: MultiDict[str]  # repeated keys kept: query.getall("fields")
    headers: CIMultiDict[str]
    body: bytes
    json: Any  # parsed body, or None when the body is empty or not JSON
    received_at: float  # time.monotonic()
    status: int | None = None  # status answered; None when the answer was lost
    fault: str | None = None  # kind of injected fault applied, if any


@dataclass
class Fault:
    """An injected misbehaviour, applied to the next ``remaining`` matching requests."""

    kind: str  # "respond": canned answer; "hang": delay then serve; "drop": serve, then lose the answer
    remaining: int
    operation: str | None = None  # None: any operation
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON body of a canned answer (None: empty body)
    seconds: float = 0.0

    def matches(self, operation: str) -> bool:
        return self.remaining > 0 and self.operation in (None, operation)


class HttpFake:
    """Lifecycle, request log and fault queue shared by the HTTP fakes.

    Subclasses register their routes in ``_add_routes`` with ``self._route``.
    The server's state lives on the fake object, not on the aiohttp app, so
    ``down()``/``come_back()`` (which rebuild the app) keep it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port  # 0 until start() picked a free port; then fixed
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._route_operations: dict[Any, str] = {}

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid after start())."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    async def start(self) -> str:
        """Listen (on a free port the first time, on the same port after down()) and return the base URL."""
        if self._runner is not None:
            return self.url
        app = web.Application(middlewares=[self._middleware])
        self._route_operations = {}
        self._add_routes(app.router)
        # A short shutdown timeout: down() must cut hung requests, not wait for them.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner
        return self.url

    async def stop(self) -> None:
        """Stop listening and close every open connection (idempotent)."""
        await self._stop_listening()

    async def down(self) -> None:
        """Simulate an outage: new connections are refused, open ones are cut."""
        await self._stop_listening()

    async def come_back(self) -> None:
        """End an outage: listen again on the same port, with the same state."""
        await self.start()

    async def _stop_listening(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- request log ---------------------------------------------------------

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def operations(self) -> list[str]:
        """The operations received so far, in order (handy to assert a wire sequence)."""
        return [r.operation for r in self.requests]

    async def wait_for_requests(
        self, count: int, operation: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` requests (of ``operation``, if given) were received."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.requests if operation is None else self.requests_for(operation)
            if len(seen) >= count:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(seen)} of {count} {operation or ''} requests")
            await asyncio.sleep(0.01)

    # -- faults --------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Queue a fault; faults are consumed in the order they were injected."""
        self._faults.append(fault)
        return fault

    def hang_next(self, seconds: float, n: int = 1, operation: str | None = None) -> Fault:
        """Delay the next ``n`` answers by ``seconds``; the request is then served
        normally (a slow server: the work still happens, even if the client gave up)."""
        return self.inject(Fault("hang", n, operation, seconds=seconds))

    def lose_response_next(self, n: int = 1, operation: str | None = None) -> Fault:
        """Serve the next ``n`` requests (the change IS made) but drop the
        connection instead of answering: the client sees a connection error."""
        return self.inject(Fault("drop", n, operation))

    def respond_next(
        self,
        status: int,
        n: int = 1,
        operation: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer the next ``n`` requests with a canned status/body, without serving them."""
        return self.inject(Fault("respond", n, operation, status, dict(headers or {}), body))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return [f for f in self._faults if f.remaining > 0]

    def _take_fault(self, operation: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(operation):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- plumbing ------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def _route(self, router: web.UrlDispatcher, method: str, path: str, operation: str, handler: Handler) -> None:
        route = router.add_route(method, path, handler)
        self._route_operations[route] = operation

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = await self._record(request)
        fault = self._take_fault(record.operation)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "hang":
                await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "respond":
            response: web.StreamResponse = _canned_response(fault)
        else:
            response = await handler(request)
        if fault is not None and fault.kind == "drop" and request.transport is not None:
            # The work above is done; only the answer is lost.
            request.transport.abort()
            return response
        record.status = response.status
        return response

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        route = request.match_info.route
        record = RecordedRequest(
            operation=self._route_operations.get(route, "unknown"),
            method=request.method,
            path=request.path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            json=_parse_json(body),
            received_at=time.monotonic(),
        )
        self.requests.append(record)
        return record


def _canned_response(fault: Fault) -> web.Response:
    if fault.body is None:
        return web.Response(status=fault.status, headers=fault.headers)
    return web.json_response(fault.body, status=fault.status, headers=fault.headers)


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Jira data model
# ---------------------------------------------------------------------------

# (status name, status id, statusCategory key, statusCategory id, colour, transition id)
_STATUSES = {
    "To Do": ("10000", "new", 2, "blue-gray", "11"),
    "In Progress": ("3", "indeterminate", 4, "yellow", "21"),
    "Done": ("10001", "done", 3, "green", "31"),
}
_CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
_ISSUE_TYPES = {"Task": "10001", "Bug": "10004", "Story": "10002", "Epic": "10000"}
# (id, name, inward description, outward description) as on a default Cloud site
_LINK_TYPES = [
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
]
# Fields a create request may set; anything else is refused like an unknown field.
_SETTABLE_FIELDS = {
    "project", "summary", "description", "issuetype", "labels", "assignee",
    "duedate", "priority", "reporter",
}
_KEY_RE = re.compile(r"^([A-Z][A-Z0-9_]*)-([1-9][0-9]*)$")


@dataclass
class JiraProject:
    id: str
    key: str
    name: str


@dataclass
class JiraUser:
    account_id: str
    email: str
    display_name: str
    active: bool = True
    email_visible: bool = True  # Cloud hides e-mails by the user's privacy setting


@dataclass
class JiraIssue:
    id: str
    key: str
    project_key: str
    summary: str
    issuetype: str = "Task"
    description: str | None = None
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None  # accountId
    reporter: str | None = None  # accountId
    duedate: str | None = None  # "YYYY-MM-DD"
    status: str = "To Do"
    priority: str = "Medium"
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    updated: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    resolved: datetime | None = None


@dataclass
class JiraLink:
    id: str
    type_name: str
    inward_key: str  # POST's "inwardIssue": this issue gets the *outward* phrase ("blocks")
    outward_key: str  # POST's "outwardIssue": this issue gets the *inward* phrase ("is blocked by")


class JqlError(ValueError):
    """A JQL query this fake refuses; the message is Jira-worded."""


# ---------------------------------------------------------------------------
# JQL subset
# ---------------------------------------------------------------------------

_JQL_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|!~|~|=|\(|\)|,)
      | (?P<word>[^\s=!~(),"']+)
    )""",
    re.VERBOSE,
)
_FIELD_ALIASES = {
    "project": "project", "key": "key", "issuekey": "key", "id": "key",
    "labels": "labels", "summary": "summary", "text": "summary",
    "status": "status", "statuscategory": "statusCategory",
    "issuetype": "issuetype", "type": "issuetype", "assignee": "assignee",
}
_FIELD_OPERATORS = {
    "project": {"=", "!=", "in", "not in"},
    "key": {"=", "!=", "in", "not in"},
    "labels": {"=", "!=", "in", "not in"},
    "summary": {"~", "!~"},
    "status": {"=", "!=", "in", "not in"},
    "statusCategory": {"=", "!=", "in", "not in"},
    "issuetype": {"=", "!=", "in", "not in"},
    "assignee": {"=", "!=", "in", "not in"},
}
_ORDER_FIELDS = {"key", "created", "updated", "duedate"}


@dataclass
class JqlClause:
    field: str
    operator: str  # "=", "!=", "~", "!~", "in", "not in"
    values: list[str]


@dataclass
class JqlQuery:
    clauses: list[JqlClause]
    order_by: str = "created"
    descending: bool = True


def _tokenize(jql: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        match = _JQL_TOKEN.match(jql, pos)
        if not match or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{jql[pos]}' is a reserved JQL character.")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
        pos = match.end()
    return tokens


def parse_jql(jql: str) -> JqlQuery:
    """Parse the AND-only subset described in the module docstring."""
    tokens = _tokenize(jql)
    if not tokens:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
    query, pos = JqlQuery(clauses=[]), 0
    while pos < len(tokens):
        word = tokens[pos][1].lower() if tokens[pos][0] == "word" else ""
        if word == "order":
            _parse_order_by(tokens, pos, query)
            break
        if query.clauses:
            if word != "and":
                raise JqlError(
                    f"Error in the JQL Query: FakeJira understands only AND-joined clauses "
                    f"(found '{tokens[pos][1]}')."
                )
            pos += 1
        clause, pos = _parse_clause(tokens, pos)
        query.clauses.append(clause)
    if not query.clauses:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
    return query


def _parse_clause(tokens: list[tuple[str, str]], pos: int) -> tuple[JqlClause, int]:
    def token(i: int) -> tuple[str, str]:
        if i >= len(tokens):
            raise JqlError("Error in the JQL Query: Expecting either a value or a list of values but got end of query.")
        return tokens[i]

    kind, name = token(pos)
    if kind != "word" and kind != "string":
        raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{name}'.")
    field_name = _FIELD_ALIASES.get(name.lower())
    if field_name is None:
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    kind, op = token(pos + 1)
    op = op.lower()
    pos += 2
    if op == "not" and token(pos)[1].lower() == "in":
        op, pos = "not in", pos + 1
    if op not in _FIELD_OPERATORS[field_name]:
        raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
    if op in ("in", "not in"):
        values, pos = _parse_list(tokens, pos)
    else:
        kind, value = token(pos)
        if kind == "op":
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{value}'.")
        values, pos = [value], pos + 1
    return JqlClause(field_name, op, values), pos


def _parse_list(tokens: list[tuple[str, str]], pos: int) -> tuple[list[str], int]:
    if pos >= len(tokens) or tokens[pos] != ("op", "("):
        raise JqlError("Error in the JQL Query: Expecting '(' after the operator 'in'.")
    values, pos = [], pos + 1
    while pos < len(tokens) and tokens[pos] != ("op", ")"):
        kind, value = tokens[pos]
        if kind == "op" and value == ",":
            pos += 1
            continue
        if kind == "op":
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{value}'.")
        values.append(value)
        pos += 1
    if pos >= len(tokens):
        raise JqlError("Error in the JQL Query: Expecting ')' but reached the end of the query.")
    return values, pos + 1


def _parse_order_by(tokens: list[tuple[str, str]], pos: int, query: JqlQuery) -> None:
    words = [text.lower() for _, text in tokens[pos:]]
    if len(words) not in (3, 4) or words[1] != "by" or words[2] not in _ORDER_FIELDS:
        raise JqlError(f"Error in the JQL Query: FakeJira can ORDER BY one of {sorted(_ORDER_FIELDS)}.")
    direction = words[3] if len(words) == 4 else "asc"
    if direction not in ("asc", "desc"):
        raise JqlError(f"Error in the JQL Query: Expecting ASC or DESC but got '{direction}'.")
    query.order_by, query.descending = words[2], direction == "desc"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+\*?", text.lower())


def _text_matches(text: str, query: str) -> bool:
    """Every word of ``query`` must be a word of ``text`` (``word*``: a prefix)."""
    have = _words(text)
    for wanted in _words(query):
        if wanted.endswith("*"):
            if not any(w.startswith(wanted[:-1]) for w in have):
                return False
        elif wanted not in have:
            return False
    return True


# ---------------------------------------------------------------------------
# FakeJira
# ---------------------------------------------------------------------------


class FakeJira(HttpFake):
    """Jira Cloud REST (api/2 and api/3) for Firebell's use of the ``jira`` library.

    Operation names (for ``requests_for``/faults): ``server_info``, ``myself``,
    ``fields``, ``project``, ``issue_types``, ``create``, ``get``, ``search``,
    ``search_removed``, ``link_types``, ``link``, ``user_search``,
    ``transitions``, ``transition``, ``unknown``.
    """

    def __init__(
        self,
        email: str = "firebell-bot@example.com",
        api_token: str = "jira-api-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.email = email
        self.api_token = api_token
        self.projects: dict[str, JiraProject] = {}
        self.users: dict[str, JiraUser] = {}  # by accountId
        self.issues: dict[str, JiraIssue] = {}  # by key
        self.links: list[JiraLink] = []
        self._ids = itertools.count(10000)
        self._page_tokens: dict[str, int] = {}
        self.bot_account_id = self.add_user(email, account_id="fake-bot-account", display_name="Firebell Bot")

    # -- test helpers: state ---------------------------------------------------

    def add_project(self, key: str, name: str | None = None) -> JiraProject:
        project = JiraProject(str(next(self._ids)), key.upper(), name or f"Project {key.upper()}")
        self.projects[project.key] = project
        return project

    def add_user(
        self,
        email: str,
        account_id: str | None = None,
        display_name: str | None = None,
        active: bool = True,
        email_visible: bool = True,
    ) -> str:
        """Register a user (for e-mail -> accountId lookups and assignees); returns the accountId."""
        account_id = account_id or f"acc-{secrets.token_hex(6)}"
        self.users[account_id] = JiraUser(
            account_id, email, display_name or email.split("@")[0].title(), active, email_visible
        )
        return account_id

    def add_issue(self, project_key: str, summary: str, **fields: Any) -> JiraIssue:
        """Seed an issue without HTTP (fields: labels, status, duedate, assignee, description, issuetype)."""
        project = self.projects[project_key.upper()]
        number = 1 + sum(1 for i in self.issues.values() if i.project_key == project.key)
        issue = JiraIssue(str(next(self._ids)), f"{project.key}-{number}", project.key, summary, **fields)
        issue.reporter = issue.reporter or self.bot_account_id
        self.issues[issue.key] = issue
        return issue

    def issue(self, key: str) -> JiraIssue:
        return self.issues[key]

    def set_status(self, key: str, status: str) -> None:
        """Move an issue to "To Do", "In Progress" or "Done" (as a person would in Jira)."""
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}")
        issue = self.issues[key]
        issue.status = status
        issue.resolved = datetime.now(timezone.utc) if status == "Done" else None
        issue.updated = datetime.now(timezone.utc)

    def set_due_date(self, key: str, due: date | str | None) -> None:
        self.issues[key].duedate = due.isoformat() if isinstance(due, date) else due
        self.issues[key].updated = datetime.now(timezone.utc)

    def links_of(self, key: str) -> list[JiraLink]:
        return [link for link in self.links if key in (link.inward_key, link.outward_key)]

    # -- test helpers: faults --------------------------------------------------

    def rate_limit_next(self, n: int = 1, retry_after: int = 1, operation: str | None = None) -> Fault:
        """429 as Jira Cloud sends it: Retry-After (seconds) and X-RateLimit-* headers."""
        reset = datetime.now(timezone.utc) + timedelta(seconds=retry_after)
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
            "RateLimit-Reason": "jira-quota-tenant-based",
        }
        return self.respond_next(429, n, operation, {"errorMessages": ["Rate limit exceeded."]}, headers)

    def unavailable_next(self, n: int = 1, retry_after: int | None = None, operation: str | None = None) -> Fault:
        """503; with ``retry_after`` the jira library will retry it (see module docstring)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.respond_next(503, n, operation, {"errorMessage": "Service temporarily unavailable"}, headers)

    def fail_next(self, status: int = 500, n: int = 1, operation: str | None = None) -> Fault:
        return self.respond_next(status, n, operation, {"errorMessages": ["Internal server error"], "errors": {}})

    # -- routes ----------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        for version in ("2", "3"):
            api = f"/rest/api/{version}"
            self._route(router, "GET", f"{api}/serverInfo", "server_info", self._server_info)
            self._route(router, "GET", f"{api}/myself", "myself", self._myself)
            self._route(router, "GET", f"{api}/field", "fields", self._fields)
            self._route(router, "GET", f"{api}/project/{{key}}", "project", self._project)
            self._route(router, "GET", f"{api}/issuetype", "issue_types", self._issue_types)
            self._route(router, "POST", f"{api}/issue", "create", self._create)
            self._route(router, "GET", f"{api}/issue/{{key}}", "get", self._get)
            self._route(router, "GET", f"{api}/issue/{{key}}/transitions", "transitions", self._transitions)
            self._route(router, "POST", f"{api}/issue/{{key}}/transitions", "transition", self._transition)
            self._route(router, "GET", f"{api}/search/jql", "search", self._search)
            self._route(router, "POST", f"{api}/search/jql", "search", self._search)
            self._route(router, "*", f"{api}/search", "search_removed", self._search_removed)
            self._route(router, "GET", f"{api}/issueLinkType", "link_types", self._link_types)
            self._route(router, "POST", f"{api}/issueLink", "link", self._link)
            self._route(router, "GET", f"{api}/user/search", "user_search", self._user_search)
        self._route(router, "*", "/{tail:.*}", "unknown", self._unknown)

    # -- auth -----------------------------------------------------------------

    def _auth_failure(self, request: web.Request, anonymous_ok: bool = False) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            if anonymous_ok:
                return None
            return _jira_error(401, "You are not authenticated. Authentication required to perform this operation.")
        expected = "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        if header == expected:
            return None
        # What Cloud answers to a wrong e-mail/API token: plain text, not JSON.
        return web.Response(
            status=401,
            text="Client must be authenticated to access this resource.",
            headers={
                "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
                "WWW-Authenticate": 'Basic realm="protected-by-api-token"',
            },
        )

    # -- handlers: server ------------------------------------------------------

    async def _server_info(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request, anonymous_ok=True):
            return denied
        now = datetime.now(timezone.utc)
        return web.json_response({
            "baseUrl": self.url,
            "displayUrl": self.url,
            "version": "1001.0.0-SNAPSHOT",
            "versionNumbers": [1001, 0, 0],
            "deploymentType": "Cloud",
            "buildNumber": 100295,
            "buildDate": "2025-01-01T00:00:00.000+0000",
            "serverTime": _jira_time(now),
            "scmInfo": "fake",
            "serverTitle": "Jira",
            "defaultLocale": {"locale": "en_US"},
            "serverTimeZone": "Etc/UTC",
        })

    async def _myself(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        return web.json_response(self._user_json(self.users[self.bot_account_id], _api_version(request)))

    async def _fields(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        names = {
            "summary": "Summary", "description": "Description", "labels": "Labels", "duedate": "Due date",
            "status": "Status", "assignee": "Assignee", "reporter": "Reporter", "project": "Project",
            "issuetype": "Issue Type", "issuelinks": "Linked Issues", "created": "Created",
            "updated": "Updated", "resolution": "Resolution", "priority": "Priority", "issuekey": "Key",
        }
        return web.json_response([
            {"id": fid, "key": fid, "name": name, "custom": False, "orderable": True, "navigable": True,
             "searchable": True, "clauseNames": [fid], "schema": {"type": "any", "system": fid}}
            for fid, name in names.items()
        ])

    async def _project(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        key = request.match_info["key"].upper()
        project = self.projects.get(key) or next((p for p in self.projects.values() if p.id == key), None)
        if project is None:
            return _jira_error(404, f"No project could be found with key '{request.match_info['key']}'.")
        body = self._project_json(project, _api_version(request))
        body["issueTypes"] = self._issue_types_json(_api_version(request))
        return web.json_response(body)

    async def _issue_types(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        return web.json_response(self._issue_types_json(_api_version(request)))

    async def _unknown(self, request: web.Request) -> web.Response:
        return _jira_error(404, f"FakeJira has no endpoint {request.method} {request.path}")

    async def _search_removed(self, request: web.Request) -> web.Response:
        # Jira Cloud removed /rest/api/{2,3}/search in 2025; clients must use /search/jql.
        return _jira_error(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.")

    # -- handlers: issues ------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        body = _parse_json(await request.read())
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return _jira_error(400, "Can not deserialize instance of IssueBean out of the request body.")
        errors: dict[str, str] = {}
        issue = self._issue_from_fields(body["fields"], _api_version(request), errors)
        if issue is None:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        self.issues[issue.key] = issue
        return web.json_response(
            {"id": issue.id, "key": issue.key, "self": self._issue_url(issue, _api_version(request))},
            status=201,
        )

    def _issue_from_fields(self, fields: dict[str, Any], version: str, errors: dict[str, str]) -> JiraIssue | None:
        """Validate like Jira (all field errors at once); None when ``errors`` were filled."""
        for name in fields:
            if name not in _SETTABLE_FIELDS:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        project = self._find_project(fields.get("project"))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issuetype = self._find_issue_type(fields.get("issuetype"))
        if issuetype is None and not fields.get("issuetype"):
            errors["issuetype"] = "Specify an issue type"
        elif issuetype is None:
            errors["issuetype"] = "The issue type selected is invalid."
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        labels = fields.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(lb, str) and lb for lb in labels):
            errors["labels"] = "Labels must be a list of non-empty strings."
        elif bad := [lb for lb in labels if " " in lb]:
            errors["labels"] = f"The label '{bad[0]}' contains spaces which is invalid."
        assignee = self._find_assignee(fields.get("assignee"), errors)
        duedate = fields.get("duedate")
        if duedate is not None and not _valid_date(duedate):
            errors["duedate"] = f"Error parsing date string: {duedate}"
        description = _description_in(fields.get("description"), version, errors)
        if errors or project is None or issuetype is None:
            return None
        number = 1 + sum(1 for i in self.issues.values() if i.project_key == project.key)
        return JiraIssue(
            id=str(next(self._ids)), key=f"{project.key}-{number}", project_key=project.key,
            summary=summary, issuetype=issuetype, description=description, labels=list(labels),
            assignee=assignee, reporter=self.bot_account_id, duedate=duedate,
        )

    def _find_project(self, ref: Any) -> JiraProject | None:
        if not isinstance(ref, dict):
            return None
        if "key" in ref:
            return self.projects.get(str(ref["key"]).upper())
        return next((p for p in self.projects.values() if p.id == str(ref.get("id"))), None)

    @staticmethod
    def _find_issue_type(ref: Any) -> str | None:
        if not isinstance(ref, dict):
            return None
        if "name" in ref:
            return ref["name"] if ref["name"] in _ISSUE_TYPES else None
        return next((name for name, tid in _ISSUE_TYPES.items() if tid == str(ref.get("id"))), None)

    def _find_assignee(self, ref: Any, errors: dict[str, str]) -> str | None:
        if ref is None:
            return None
        account_id = ref.get("accountId") if isinstance(ref, dict) else None
        if account_id is None:
            # Cloud dropped user names (GDPR): only accountId identifies a user.
            errors["assignee"] = "Specify the user's accountId; 'name' is not supported on Jira Cloud."
        elif account_id not in self.users or not self.users[account_id].active:
            errors["assignee"] = f"Specified user '{account_id}' does not exist or you do not have required permissions"
        return account_id

    async def _get(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        issue = self._lookup_issue(request.match_info["key"])
        if issue is None:
            return _jira_error(404, "Issue does not exist or you do not have permission to see it.")
        wanted = _requested_fields(request.query.getall("fields", []), default="*all")
        return web.json_response(self._issue_json(issue, _api_version(request), wanted))

    def _lookup_issue(self, key_or_id: str) -> JiraIssue | None:
        issue = self.issues.get(key_or_id.upper())
        return issue or next((i for i in self.issues.values() if i.id == key_or_id), None)

    async def _transitions(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        issue = self._lookup_issue(request.match_info["key"])
        if issue is None:
            return _jira_error(404, "Issue does not exist or you do not have permission to see it.")
        version = _api_version(request)
        return web.json_response({
            "expand": "transitions",
            "transitions": [
                {"id": info[4], "name": name, "to": self._status_json(name, version),
                 "hasScreen": False, "isGlobal": True, "isInitial": False, "isConditional": False}
                for name, info in _STATUSES.items() if name != issue.status
            ],
        })

    async def _transition(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        issue = self._lookup_issue(request.match_info["key"])
        if issue is None:
            return _jira_error(404, "Issue does not exist or you do not have permission to see it.")
        body = _parse_json(await request.read()) or {}
        wanted = str((body.get("transition") or {}).get("id", ""))
        target = next((n for n, info in _STATUSES.items() if info[4] == wanted and n != issue.status), None)
        if target is None:
            return _jira_error(400, f"Transition id '{wanted}' is not valid for this issue.")
        self.set_status(issue.key, target)
        return web.Response(status=204)

    # -- handlers: search ------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        try:
            params = _search_params(request, _parse_json(await request.read()))
            query = parse_jql(params["jql"])
            matches = self._run_query(query)
        except JqlError as error:
            return _jira_error(400, str(error))
        offset = 0
        if params["nextPageToken"]:
            if params["nextPageToken"] not in self._page_tokens:
                return _jira_error(400, "The provided next page token is invalid or expired.")
            offset = self._page_tokens[params["nextPageToken"]]
        page = matches[offset: offset + params["maxResults"]]
        version = _api_version(request)
        body: dict[str, Any] = {
            "issues": [self._issue_json(i, version, params["fields"]) for i in page],
            "isLast": offset + len(page) >= len(matches),
        }
        if not body["isLast"]:
            # Cloud omits the key on the last page (JRACLOUD-92184), so do we.
            token = secrets.token_urlsafe(12)
            self._page_tokens[token] = offset + len(page)
            body["nextPageToken"] = token
        return web.json_response(body)

    def _run_query(self, query: JqlQuery) -> list[JiraIssue]:
        for clause in query.clauses:
            self._validate_clause(clause)
        found = [i for i in self.issues.values() if all(self._clause_matches(c, i) for c in query.clauses)]

        def sort_key(issue: JiraIssue) -> Any:
            if query.order_by == "key":
                return (issue.project_key, int(issue.key.rsplit("-", 1)[1]))
            if query.order_by == "duedate":
                return (issue.duedate is None, issue.duedate or "")
            return (getattr(issue, query.order_by), int(issue.id))

        return sorted(found, key=sort_key, reverse=query.descending)

    def _validate_clause(self, clause: JqlClause) -> None:
        """Refuse values Jira itself refuses (unknown project, missing issue key, unknown status)."""
        for value in clause.values:
            if clause.field == "project" and value.upper() not in self.projects:
                raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
            if clause.field == "key":
                if not _KEY_RE.match(value.upper()):
                    raise JqlError(f"The issue key '{value}' for field 'key' is invalid.")
                if value.upper() not in self.issues:
                    raise JqlError(f"An issue with key '{value}' does not exist for field 'key'.")
            if clause.field == "status" and value.lower() not in {s.lower() for s in _STATUSES}:
                raise JqlError(f"The value '{value}' does not exist for the field 'status'.")
            if clause.field == "statusCategory" and value.lower() not in {
                *_CATEGORY_NAMES, *(n.lower() for n in _CATEGORY_NAMES.values())
            }:
                raise JqlError(f"The value '{value}' does not exist for the field 'statusCategory'.")
            if clause.field == "issuetype" and value not in _ISSUE_TYPES:
                raise JqlError(f"The value '{value}' does not exist for the field 'issuetype'.")

    def _clause_matches(self, clause: JqlClause, issue: JiraIssue) -> bool:
        wanted = [v.lower() for v in clause.values]
        if clause.operator in ("~", "!~"):
            hit = _text_matches(issue.summary, clause.values[0])
            return hit if clause.operator == "~" else not hit
        if clause.field == "labels":
            have = [lb.lower() for lb in issue.labels]
            hit = any(w in have for w in wanted)
            # Like Jira, negative label clauses never match issues without labels.
            return hit if clause.operator in ("=", "in") else bool(have) and not hit
        actual = self._clause_value(clause.field, issue)
        hit = actual in wanted
        if clause.field == "statusCategory":
            hit = hit or _CATEGORY_NAMES[actual].lower() in wanted
        return hit if clause.operator in ("=", "in") else not hit

    @staticmethod
    def _clause_value(field_name: str, issue: JiraIssue) -> str:
        return {
            "project": issue.project_key.lower(),
            "key": issue.key.lower(),
            "status": issue.status.lower(),
            "statusCategory": _STATUSES[issue.status][1],
            "issuetype": issue.issuetype.lower(),
            "assignee": (issue.assignee or "empty").lower(),
        }[field_name]

    # -- handlers: links and users -------------------------------------------------

    async def _link_types(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        version = _api_version(request)
        return web.json_response({"issueLinkTypes": [self._link_type_json(lt, version) for lt in _LINK_TYPES]})

    async def _link(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        body = _parse_json(await request.read()) or {}
        type_ref = body.get("type") or {}
        link_type = next(
            (lt for lt in _LINK_TYPES if type_ref.get("name") == lt[1] or str(type_ref.get("id")) == lt[0]), None
        )
        if link_type is None:
            return _jira_error(404, f"No issue link type with name '{type_ref.get('name')}' found.")
        inward = self._lookup_issue(str((body.get("inwardIssue") or {}).get("key", "")))
        outward = self._lookup_issue(str((body.get("outwardIssue") or {}).get("key", "")))
        if inward is None or outward is None:
            return _jira_error(404, "Issue Does Not Exist")
        # Jira does not create the same link twice; the call still succeeds.
        if not any(
            lk.type_name == link_type[1] and (lk.inward_key, lk.outward_key) == (inward.key, outward.key)
            for lk in self.links
        ):
            self.links.append(JiraLink(str(next(self._ids)), link_type[1], inward.key, outward.key))
            inward.updated = outward.updated = datetime.now(timezone.utc)
        return web.Response(status=201)

    async def _user_search(self, request: web.Request) -> web.Response:
        if denied := self._auth_failure(request):
            return denied
        query = request.query.get("query", "").strip().lower()
        account_id = request.query.get("accountId")
        if not query and not account_id:
            # Cloud ignores the old "username" parameter (GDPR) and wants one of these.
            return _jira_error(400, "One of the query parameters 'query', 'accountId' or 'property' is required.")
        include_active = request.query.get("includeActive", "true").lower() == "true"
        include_inactive = request.query.get("includeInactive", "false").lower() == "true"
        found = [
            u for u in self.users.values()
            if (u.account_id == account_id or (query and _user_matches(u, query)))
            and ((u.active and include_active) or (not u.active and include_inactive))
        ]
        start = int(request.query.get("startAt", 0))
        size = int(request.query.get("maxResults", 50))
        version = _api_version(request)
        return web.json_response([self._user_json(u, version) for u in found[start: start + size]])

    # -- JSON views ---------------------------------------------------------------

    def _api(self, version: str) -> str:
        return f"{self.url}/rest/api/{version}"

    def _issue_url(self, issue: JiraIssue, version: str) -> str:
        return f"{self._api(version)}/issue/{issue.id}"

    def _issue_json(self, issue: JiraIssue, version: str, wanted: set[str] | None) -> dict[str, Any]:
        """An issue as GET /issue/{key} returns it; ``wanted`` None means every field."""
        all_fields: dict[str, Callable[[], Any]] = {
            "summary": lambda: issue.summary,
            "description": lambda: _description_out(issue.description, version),
            "issuetype": lambda: self._issue_type_json(issue.issuetype, version),
            "project": lambda: self._project_json(self.projects[issue.project_key], version),
            "status": lambda: self._status_json(issue.status, version),
            "labels": lambda: list(issue.labels),
            "assignee": lambda: self._user_json(self.users[issue.assignee], version) if issue.assignee else None,
            "reporter": lambda: self._user_json(self.users[issue.reporter], version) if issue.reporter else None,
            "duedate": lambda: issue.duedate,
            "issuelinks": lambda: [self._issue_link_json(lk, issue, version) for lk in self.links_of(issue.key)],
            "created": lambda: _jira_time(issue.created),
            "updated": lambda: _jira_time(issue.updated),
            "statuscategorychangedate": lambda: _jira_time(issue.updated),
            "resolution": lambda: {"id": "10000", "name": "Done", "description": "Work has been completed."}
            if issue.status == "Done" else None,
            "resolutiondate": lambda: _jira_time(issue.resolved) if issue.resolved else None,
            "priority": lambda: {"self": f"{self._api(version)}/priority/3", "id": "3", "name": issue.priority},
        }
        names = all_fields if wanted is None else [n for n in all_fields if n in wanted]
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue.id,
            "self": self._issue_url(issue, version),
            "key": issue.key,
            "fields": {name: all_fields[name]() for name in names},
        }

    def _issue_link_json(self, link: JiraLink, issue: JiraIssue, version: str) -> dict[str, Any]:
        link_type = next(lt for lt in _LINK_TYPES if lt[1] == link.type_name)
        # Seen from the issue named in POST's "inwardIssue", the other one is the outwardIssue.
        if link.inward_key == issue.key:
            side, other_key = "outwardIssue", link.outward_key
        else:
            side, other_key = "inwardIssue", link.inward_key
        other = self.issues[other_key]
        return {
            "id": link.id,
            "self": f"{self._api(version)}/issueLink/{link.id}",
            "type": self._link_type_json(link_type, version),
            side: {
                "id": other.id,
                "key": other.key,
                "self": self._issue_url(other, version),
                "fields": {
                    "summary": other.summary,
                    "status": self._status_json(other.status, version),
                    "issuetype": self._issue_type_json(other.issuetype, version),
                },
            },
        }

    def _link_type_json(self, link_type: tuple[str, str, str, str], version: str) -> dict[str, Any]:
        type_id, name, inward, outward = link_type
        return {"id": type_id, "name": name, "inward": inward, "outward": outward,
                "self": f"{self._api(version)}/issueLinkType/{type_id}"}

    def _status_json(self, name: str, version: str) -> dict[str, Any]:
        status_id, category_key, category_id, colour, _ = _STATUSES[name]
        return {
            "self": f"{self._api(version)}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self._api(version)}/statuscategory/{category_id}",
                "id": category_id,
                "key": category_key,
                "colorName": colour,
                "name": _CATEGORY_NAMES[category_key],
            },
        }

    def _user_json(self, user: JiraUser, version: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "self": f"{self._api(version)}/user?accountId={user.account_id}",
            "accountId": user.account_id,
            "accountType": "atlassian",
            "avatarUrls": {"48x48": f"{self.url}/avatar/{user.account_id}.png"},
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": "Etc/UTC",
            "locale": "en_US",
        }
        if user.email_visible:
            body["emailAddress"] = user.email
        return body

    def _project_json(self, project: JiraProject, version: str) -> dict[str, Any]:
        return {"self": f"{self._api(version)}/project/{project.id}", "id": project.id, "key": project.key,
                "name": project.name, "projectTypeKey": "software", "simplified": False}

    def _issue_type_json(self, name: str, version: str) -> dict[str, Any]:
        type_id = _ISSUE_TYPES[name]
        return {"self": f"{self._api(version)}/issuetype/{type_id}", "id": type_id, "name": name,
                "description": "", "subtask": False, "hierarchyLevel": 1 if name == "Epic" else 0}

    def _issue_types_json(self, version: str) -> list[dict[str, Any]]:
        return [self._issue_type_json(name, version) for name in _ISSUE_TYPES]


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _jira_error(status: int, message: str) -> web.Response:
    return web.json_response({"errorMessages": [message], "errors": {}}, status=status)


def _api_version(request: web.Request) -> str:
    return "3" if request.path.startswith("/rest/api/3/") else "2"


def _jira_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _valid_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
        return isinstance(value, str) and len(value) == 10
    except (TypeError, ValueError):
        return False


def _user_matches(user: JiraUser, query: str) -> bool:
    """Cloud matches the start of the e-mail address or of any word of the display name."""
    names = [user.display_name.lower(), *user.display_name.lower().split()]
    return user.email.lower().startswith(query) or any(n.startswith(query) for n in names)


def _requested_fields(values: list[str], default: str) -> set[str] | None:
    """The ``fields`` parameter (repeated and/or comma separated); None means all fields."""
    names = {n.strip() for v in (values or [default]) for n in v.split(",") if n.strip()}
    if names & {"*all", "*navigable"}:
        return None
    return names


def _search_params(request: web.Request, body: Any) -> dict[str, Any]:
    """GET query or POST body of /search/jql, normalised."""
    if request.method == "POST":
        source = body if isinstance(body, dict) else {}
        fields = source.get("fields") or []
        fields = [fields] if isinstance(fields, str) else list(fields)
        jql, token, max_results = source.get("jql", ""), source.get("nextPageToken"), source.get("maxResults", 50)
    else:
        fields = request.query.getall("fields", [])
        jql, token = request.query.get("jql", ""), request.query.get("nextPageToken")
        max_results = request.query.get("maxResults", 50)
    try:
        max_results = int(max_results)
    except (TypeError, ValueError):
        raise JqlError(f"The value '{max_results}' is not valid for maxResults.") from None
    return {
        "jql": jql or "",
        "nextPageToken": token,
        "maxResults": max(1, min(max_results, 100)),
        # Cloud's enhanced search returns only the issue id unless fields are asked for.
        "fields": _requested_fields(fields, default="id"),
    }


def _description_in(value: Any, version: str, errors: dict[str, str]) -> str | None:
    """api/2 takes plain text; api/3 takes only Atlassian Document Format."""
    if value is None:
        return None
    if version == "2":
        if not isinstance(value, str):
            errors["description"] = "Operation value must be a string"
        return value if isinstance(value, str) else None
    if not (isinstance(value, dict) and value.get("type") == "doc"):
        errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        return None
    return "\n".join(_adf_text(block) for block in value.get("content", []))


def _adf_text(node: dict[str, Any]) -> str:
    if node.get("type") == "text":
        return node.get("text", "")
    return "".join(_adf_text(child) for child in node.get("content", []))


def _description_out(text: str | None, version: str) -> Any:
    if text is None or version == "2":
        return text
    paragraphs = [{"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
                  for line in text.split("\n")]
    return {"type": "doc", "version": 1, "content": paragraphs}
