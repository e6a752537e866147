"""JIRA Cloud's REST API (api/2) as Firebell reaches it through the ``jira`` library 3.10.5
(integrations/jira_tracker.py: ``max_retries=0``, ``create_issue(prefetch=False)``). The kinds:

    GET  /rest/api/2/serverInfo      server_info  the constructor; deploymentType "Cloud" puts the
                                                  library in Cloud mode (search by /search/jql)
    GET  /rest/api/2/field           fields       once per client, for its field-name cache
    GET  /rest/api/2/search/jql      search       nextPageToken paging, ``isLast``
    POST /rest/api/2/issue           create
    GET  /rest/api/2/user/search     user_search  e-mail -> accountId
    GET  /rest/api/2/issueLinkType   link_types   before every link (the library maps names)
    POST /rest/api/2/issueLink       link

JQL: exactly the two shapes jira_tracker.py sends (``_BY_LABEL`` and ``_BY_KEYS`` below); any
other is a 400 naming them, so that a new shape fails loudly rather than being half understood.
Like Jira, an unknown project is a 400 "The value 'X' does not exist for the field 'project'."
and a missing key a 400 "An issue with key 'X' does not exist for field 'key'." (Firebell drops
the key and asks again).

Errors have Jira's shape, ``{"errorMessages": [...], "errors": {field: message}}``; a wrong
e-mail or API token is a 401 in plain text, "Client must be authenticated to access this
resource.", as Cloud answers it. Jira's "Blocks"-style naming trap holds for "Relates" too:
``inwardIssue=A, outwardIssue=B`` lists B as A's ``outwardIssue`` and A as B's ``inwardIssue``.
"""
from __future__ import annotations

import base64
import itertools
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import web

from tests.fakes.http_stand_in import RECORD, HttpStandIn, Refused

API = "/rest/api/2"
_STRING = r'"((?:[^"\\]|\\.)*)"'  # jira_tracker._jql_string
_BY_LABEL = re.compile(rf"^project = {_STRING} AND labels = {_STRING} ORDER BY created ASC$")
_KEY = r"[A-Z][A-Z0-9_]*-[1-9][0-9]*"
_BY_KEYS = re.compile(rf"^key in \(({_KEY}(?:, {_KEY})*)\)$")
STATUS_CATEGORIES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
ISSUE_TYPES = ("Task",)  # what Firebell files
LINK_TYPES = {"Relates": ("relates to", "relates to")}  # name: (inward, outward) phrase
SEARCH_FIELDS = ("summary", "issuelinks", "status", "duedate")
_SETTABLE = {"project", "issuetype", "summary", "description", "labels", "duedate", "assignee"}


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
    project: str
    summary: str
    description: str | None = None
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None  # accountId
    duedate: str | None = None  # "YYYY-MM-DD"
    status: str = "To Do"


@dataclass
class JiraLink:
    type_name: str
    inward_key: str
    outward_key: str


class FakeJira(HttpStandIn):
    def __init__(self, email: str = "firebell-bot@example.com",
                 api_token: str = "jira-api-token") -> None:
        super().__init__()
        self.email, self.api_token = email, api_token
        self.projects: set[str] = set()
        self.users: dict[str, JiraUser] = {}  # by accountId
        self.issues: dict[str, JiraIssue] = {}  # by key, in creation order
        self.links: list[JiraLink] = []
        self._ids = itertools.count(10000)
        self._pages: dict[str, int] = {}  # nextPageToken -> offset

    # ---- set up and read by the test -----------------------------------------------------------

    def add_project(self, key: str) -> None:
        with self._lock:
            self.projects.add(key.upper())

    def add_user(self, email: str, account_id: str | None = None, display_name: str | None = None,
                 active: bool = True, email_visible: bool = True) -> str:
        """A user Firebell may find by e-mail and assign; returns the accountId."""
        account_id = account_id or f"acc-{secrets.token_hex(6)}"
        name = display_name or email.split("@")[0].title()
        with self._lock:
            self.users[account_id] = JiraUser(account_id, email, name, active, email_visible)
        return account_id

    def add_issue(self, project: str, summary: str, **fields: Any) -> JiraIssue:
        """An issue made by a person (fields: description, labels, assignee, duedate, status)."""
        with self._lock:
            return self._new_issue(project.upper(), summary, **fields)

    def issue(self, key: str) -> JiraIssue:
        return self.issues[key]

    def issues_labelled(self, label: str) -> list[JiraIssue]:
        with self._lock:
            return [i for i in self.issues.values() if label in i.labels]

    def set_status(self, key: str, status: str) -> None:
        """Move an issue as a person would in Jira: "To Do", "In Progress" or "Done"."""
        if status not in STATUS_CATEGORIES:
            raise ValueError(f"status must be one of {list(STATUS_CATEGORIES)}")
        with self._lock:
            self.issues[key].status = status

    def links_of(self, key: str) -> list[JiraLink]:
        with self._lock:
            return [lk for lk in self.links if key in (lk.inward_key, lk.outward_key)]

    def _new_issue(self, project: str, summary: str, **fields: Any) -> JiraIssue:
        number = 1 + sum(1 for i in self.issues.values() if i.project == project)
        issue = JiraIssue(str(next(self._ids)), f"{project}-{number}", project, summary, **fields)
        self.issues[issue.key] = issue
        return issue

    # ---- HTTP ----------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{API}/serverInfo", self._server_info, name="server_info"),
            web.get(f"{API}/field", self._fields, name="fields"),
            web.get(f"{API}/search/jql", self._search, name="search"),
            web.post(f"{API}/issue", self._create, name="create"),
            web.get(f"{API}/user/search", self._user_search, name="user_search"),
            web.get(f"{API}/issueLinkType", self._link_types, name="link_types"),
            web.post(f"{API}/issueLink", self._link, name="link"),
        ]

    def _authorize(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        if request.headers.get("Authorization") == f"Basic {expected}":
            return None
        return web.Response(status=401,
                            text="Client must be authenticated to access this resource.",
                            headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})

    def _error_body(self, status: int, message: str) -> dict:
        return {"errorMessages": [message], "errors": {}}

    def _server_info(self, request: web.Request) -> web.Response:
        return web.json_response({"baseUrl": self.base_url, "deploymentType": "Cloud",
                                  "version": "1001.0.0", "versionNumbers": [1001, 0, 0]})

    def _fields(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": f, "key": f, "name": f.title(), "clauseNames": [f]}
                                  for f in SEARCH_FIELDS])

    def _search(self, request: web.Request) -> web.Response:
        query = _query(request, {"jql", "fields", "maxResults", "nextPageToken"})
        wanted = [f for value in query.getall("fields", []) for f in value.split(",")]
        if unknown := sorted(set(wanted) - set(SEARCH_FIELDS)):
            raise _refused(f"FakeJira serves the fields {SEARCH_FIELDS}, not {unknown}.")
        found = self._matching(query.get("jql", ""))
        token = query.get("nextPageToken")
        if token is not None and token not in self._pages:
            raise _refused("The provided next page token is invalid or expired.")
        offset, size = self._pages.get(token, 0), min(int(query.get("maxResults", 50)), 100)
        page = found[offset:offset + size]
        body: dict[str, Any] = {"issues": [self._issue_json(i, wanted) for i in page],
                                "isLast": offset + size >= len(found)}
        if not body["isLast"]:  # Cloud leaves the token out of the last page (JRACLOUD-92184)
            body["nextPageToken"] = secrets.token_urlsafe(12)
            self._pages[body["nextPageToken"]] = offset + size
        return web.json_response(body)

    def _matching(self, jql: str) -> list[JiraIssue]:
        if by_label := _BY_LABEL.match(jql):
            project, label = (re.sub(r"\\(.)", r"\1", g) for g in by_label.groups())
            if project not in self.projects:
                raise _refused(f"The value '{project}' does not exist for the field 'project'.")
            return [i for i in self.issues.values() if i.project == project and label in i.labels]
        if by_keys := _BY_KEYS.match(jql):
            keys = list(dict.fromkeys(by_keys[1].split(", ")))
            if missing := [k for k in keys if k not in self.issues]:
                raise _refused(*(f"An issue with key '{k}' does not exist for field 'key'."
                                 for k in missing))
            return [self.issues[k] for k in keys]
        raise _refused(f"FakeJira understands only the JQL Firebell sends "
                       f"({_BY_LABEL.pattern} or {_BY_KEYS.pattern}), not: {jql}")

    def _create(self, request: web.Request) -> web.Response:
        body = request[RECORD].body
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            raise _refused("Can not deserialize instance of IssueBean out of the request body.")
        errors = self._field_errors(fields)
        if errors:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        assignee = (fields.get("assignee") or {}).get("accountId")
        issue = self._new_issue(fields["project"]["key"], fields["summary"],
                                description=fields.get("description"),
                                labels=list(fields.get("labels") or []), assignee=assignee,
                                duedate=fields.get("duedate"))
        return web.json_response({"id": issue.id, "key": issue.key,
                                  "self": f"{self.base_url}{API}/issue/{issue.id}"}, status=201)

    def _field_errors(self, fields: dict[str, Any]) -> dict[str, str]:
        """Every field error at once, worded as Jira does."""
        errors = {name: f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                        "or unknown." for name in fields if name not in _SETTABLE}
        if (fields.get("project") or {}).get("key") not in self.projects:
            errors["project"] = "Specify a valid project ID or key"
        if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            errors["issuetype"] = "The issue type selected is invalid."
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        if not isinstance(fields.get("description"), (str, type(None))):
            errors["description"] = "Operation value must be a string"
        if bad := [lb for lb in fields.get("labels") or [] if not lb or " " in lb]:
            errors["labels"] = f"The label '{bad[0]}' contains spaces which is invalid."
        if "assignee" in fields:
            account_id = (fields["assignee"] or {}).get("accountId")
            if account_id not in self.users or not self.users[account_id].active:
                errors["assignee"] = (f"Specified user '{account_id}' does not exist or you do "
                                      "not have required permissions")
        if fields.get("duedate") is not None and not _is_date(fields["duedate"]):
            errors["duedate"] = f"Error parsing date string: {fields['duedate']}"
        return errors

    def _user_search(self, request: web.Request) -> web.Response:
        query = _query(request, {"query", "includeActive", "includeInactive", "maxResults"})
        wanted = query.get("query", "").strip().lower()
        if not wanted:
            raise _refused("One of the query parameters 'query', 'accountId' or 'property' "
                           "is required.")
        found = [u for u in self.users.values() if u.active and _user_matches(u, wanted)]
        found = found[:int(query.get("maxResults", 50))]
        return web.json_response([self._user_json(u) for u in found])

    def _link_types(self, request: web.Request) -> web.Response:
        return web.json_response({"issueLinkTypes": [
            {"id": str(n), "name": name, "inward": inward, "outward": outward}
            for n, (name, (inward, outward)) in enumerate(LINK_TYPES.items(), start=10003)]})

    def _link(self, request: web.Request) -> web.Response:
        body = request[RECORD].body if isinstance(request[RECORD].body, dict) else {}
        type_name = (body.get("type") or {}).get("name")
        if type_name not in LINK_TYPES:
            return web.json_response(self._error_body(
                404, f"No issue link type with name '{type_name}' found."), status=404)
        inward, outward = ((body.get(side) or {}).get("key")
                           for side in ("inwardIssue", "outwardIssue"))
        if inward not in self.issues or outward not in self.issues:
            return web.json_response(self._error_body(404, "Issue Does Not Exist"), status=404)
        link = JiraLink(type_name, inward, outward)
        if link not in self.links:  # Jira does not make the same link twice; the call succeeds
            self.links.append(link)
        return web.Response(status=201)

    # ---- JSON views ----------------------------------------------------------------------------

    def _issue_json(self, issue: JiraIssue, wanted: list[str]) -> dict[str, Any]:
        views = {
            "summary": issue.summary,
            "duedate": issue.duedate,
            "status": {"name": issue.status,
                       "statusCategory": {"key": STATUS_CATEGORIES[issue.status]}},
            "issuelinks": [self._link_json(lk, issue.key) for lk in self.links
                           if issue.key in (lk.inward_key, lk.outward_key)],
        }
        return {"id": issue.id, "key": issue.key, "self": f"{self.base_url}{API}/issue/{issue.id}",
                "fields": {name: views[name] for name in wanted}}

    @staticmethod
    def _link_json(link: JiraLink, seen_from: str) -> dict[str, Any]:
        if link.inward_key == seen_from:
            return {"type": {"name": link.type_name}, "outwardIssue": {"key": link.outward_key}}
        return {"type": {"name": link.type_name}, "inwardIssue": {"key": link.inward_key}}

    def _user_json(self, user: JiraUser) -> dict[str, Any]:
        body = {"accountId": user.account_id, "accountType": "atlassian", "active": user.active,
                "displayName": user.display_name,
                "self": f"{self.base_url}{API}/user?accountId={user.account_id}"}
        return {**body, "emailAddress": user.email} if user.email_visible else body


def _refused(*messages: str) -> Refused:
    return Refused(web.json_response({"errorMessages": list(messages), "errors": {}}, status=400))


def _query(request: web.Request, allowed: set[str]) -> Any:
    if unknown := sorted(set(request.query) - allowed):
        raise _refused(f"FakeJira does not serve the query parameter(s) {unknown} here.")
    return request.query


def _user_matches(user: JiraUser, wanted: str) -> bool:
    """Cloud matches the start of the e-mail address or of any word of the display name."""
    words = user.display_name.lower().split()
    return user.email.lower().startswith(wanted) or any(w.startswith(wanted) for w in words)


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        return False
