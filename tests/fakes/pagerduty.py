"""PagerDuty's REST API v2 as Firebell calls it (integrations/pagerduty.py). The kinds:

    GET /incidents/{id}                                   get_incident
    PUT /incidents/{id}                                   update_incident  (acknowledge, resolve)
    POST /incidents                                       create_incident  (a page from Teams)
    GET /incidents?incident_key=                          list_incidents   (by incident_key)
    GET /oncalls                                          oncalls
    GET /services                                         services
    GET /service_dependencies/technical_services/{id}     service_dependencies

Query parameters are the ones Firebell sends; any other is a 400 naming it, so that a change
fails loudly instead of being silently ignored as PagerDuty ignores unknown filters (its
``schedule_ids=X``, without the brackets, returns everyone). ``/oncalls`` takes ``include[]=users``
(without it a user is a reference, with no e-mail), ``earliest=true`` (one entry per policy,
level and user), ``schedule_ids[]``, ``escalation_policy_ids[]``, ``since``/``until`` (default:
now); lists page by ``limit`` (at most 100) and ``offset``, with ``more``.

Wire facts (PagerDuty developer docs, REST API: Authentication, Errors, Rate Limits):
``Authorization: Token token=<token>`` exactly, else 401 (code 2006); a read-only token writing
-> 403 (2010); a write needs ``From: <e-mail of a PagerDuty user>`` -> 400 (2001) when missing,
``Requester User Not Found`` (1008) when unknown; updating a resolved incident -> 400 ``Incident
Already Resolved`` (1001); errors ``{"error": {"message", "code", "errors": [...]}}``; creating
an incident: ``{"incident": {"type": "incident", "title", "service": service_reference, ...}}``
-> 201, an unknown service, escalation policy or assignee, or assignments *and* an escalation
policy -> 400 (2001); an ``incident_key`` already on an open incident of the same service -> 400
``Arguments Caused Error`` (2002, "Open incident with matching dedup key already exists on this
service"); the incident list defaults to the last 30 days; a 429
carries ``ratelimit-limit``, ``ratelimit-remaining`` and ``ratelimit-reset`` (seconds) but **no
Retry-After** (``rate_limit_next(retry_after=...)`` adds one when a test wants it).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from tests.fakes.http_stand_in import RECORD, HttpStandIn, Refused

ACCEPT_V2 = "application/vnd.pagerduty+json;version=2"
MAX_LIMIT = 100


@dataclass
class PdUser:
    id: str
    name: str
    email: str


@dataclass
class PdOnCall:
    user_id: str
    escalation_policy_id: str
    escalation_level: int = 1
    schedule_id: str | None = None  # None: on call directly through the policy
    start: datetime | None = None  # None: since forever
    end: datetime | None = None  # None: until forever


@dataclass
class PdDependency:
    id: str
    supporting_service_id: str
    dependent_service_id: str


@dataclass
class PdIncident:
    id: str
    title: str
    service_id: str
    status: str = "triggered"
    acknowledgements: list[tuple[datetime, str]] = field(default_factory=list)  # (at, user id)
    number: int = 0
    incident_key: str | None = None
    urgency: str = "high"
    escalation_policy_id: str | None = None
    assignee_ids: list[str] = field(default_factory=list)
    details: str | None = None
    created_by: str | None = None  # the From user's id


class FakePagerDuty(HttpStandIn):
    def __init__(self, token: str = "pd-api-token") -> None:
        super().__init__()
        self.token = token
        self.read_only_tokens: set[str] = set()
        self.users: dict[str, PdUser] = {}
        self.services: dict[str, str] = {}  # id -> name
        self.escalation_policies: dict[str, str] = {}  # id -> name
        self.schedules: dict[str, str] = {}  # id -> name
        self.oncalls: list[PdOnCall] = []
        self.dependencies: list[PdDependency] = []
        self.incidents: dict[str, PdIncident] = {}
        self._counter = itertools.count(1)

    # ---- set up by the test --------------------------------------------------------------------

    def add_read_only_token(self, token: str) -> None:
        with self._lock:
            self.read_only_tokens.add(token)

    def add_user(self, name: str, email: str, id: str | None = None) -> str:
        return self._add(self.users, "U", id, lambda uid: PdUser(uid, name, email))

    def add_escalation_policy(self, name: str, id: str | None = None) -> str:
        return self._add(self.escalation_policies, "E", id, lambda _: name)

    def add_schedule(self, name: str, id: str | None = None) -> str:
        return self._add(self.schedules, "S", id, lambda _: name)

    def add_service(self, name: str, id: str | None = None) -> str:
        return self._add(self.services, "V", id, lambda _: name)

    def add_incident(self, title: str, service_id: str, status: str = "triggered",
                     id: str | None = None) -> str:
        return self._add(self.incidents, "I", id,
                         lambda iid: PdIncident(iid, title, service_id, status))

    def add_oncall(self, user_id: str, escalation_policy_id: str, escalation_level: int = 1,
                   schedule_id: str | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> None:
        """Put someone on call (PagerDuty computes on-calls; a test states the result)."""
        with self._lock:
            self.oncalls.append(PdOnCall(user_id, escalation_policy_id, escalation_level,
                                         schedule_id, start, end))

    def add_dependency(self, supporting_service_id: str, dependent_service_id: str) -> None:
        """``dependent`` depends on ``supporting`` (checkout depends on the database)."""
        with self._lock:
            self.dependencies.append(PdDependency(f"PD{next(self._counter):05d}",
                                                  supporting_service_id, dependent_service_id))

    def rate_limit_next(self, n: int = 1, *, reset_seconds: int = 1, retry_after: int | None = None,
                        kind: str | None = None) -> None:
        """429 as PagerDuty sends it: ``ratelimit-*`` headers, a Retry-After only if asked."""
        headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0",
                   "ratelimit-reset": str(reset_seconds)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.respond_next(429, n, kind=kind, body=_error_body("Rate Limit Exceeded", 2020),
                          headers=headers)

    def _add(self, table: dict, letter: str, id: str | None, make) -> str:
        with self._lock:
            new_id = id or f"P{letter}{next(self._counter):05d}"
            table[new_id] = make(new_id)
            return new_id

    # ---- HTTP ----------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/incidents/{id}", self._get_incident, name="get_incident"),
            web.put("/incidents/{id}", self._update_incident, name="update_incident"),
            web.post("/incidents", self._create_incident, name="create_incident"),
            web.get("/incidents", self._list_incidents, name="list_incidents"),
            web.get("/oncalls", self._oncalls, name="oncalls"),
            web.get("/services", self._services, name="services"),
            web.get("/service_dependencies/technical_services/{id}", self._service_dependencies,
                    name="service_dependencies"),
        ]

    def _authorize(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "").removeprefix("Token token=")
        if given in (self.token, *self.read_only_tokens):
            return None
        return _error(401, "Authentication failed", 2006)

    def _error_body(self, status: int, message: str) -> dict:
        return _error_body(message, 2020 if status == 429 else 2000)

    def _get_incident(self, request: web.Request) -> web.Response:
        return web.json_response({"incident": self._incident_json(self._incident_or_404(request))})

    def _update_incident(self, request: web.Request) -> web.Response:
        if request.headers["Authorization"].removeprefix("Token token=") in self.read_only_tokens:
            return _error(403, "Access Denied", 2010)
        requester = self._requester(request.headers.get("From"))
        incident = self._incident_or_404(request)
        body = request[RECORD].body
        wanted = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(wanted, dict) or wanted.get("type") != "incident_reference" \
                or set(wanted) != {"type", "status"}:
            raise _bad("Invalid Input Provided", 2001, "FakePagerDuty takes an incident_reference "
                                                       "with a status only")
        if wanted["status"] not in ("acknowledged", "resolved"):
            raise _bad("Invalid Status Provided", 1003)
        if incident.status == "resolved":
            raise _bad("Incident Already Resolved", 1001)
        if wanted["status"] == "acknowledged" and incident.status != "acknowledged":
            incident.acknowledgements.append((_now(), requester))
        incident.status = wanted["status"]
        return web.json_response({"incident": self._incident_json(incident)})

    def _create_incident(self, request: web.Request) -> web.Response:
        if request.headers["Authorization"].removeprefix("Token token=") in self.read_only_tokens:
            return _error(403, "Access Denied", 2010)
        requester = self._requester(request.headers.get("From"))
        body = request[RECORD].body
        wanted = body.get("incident") if isinstance(body, dict) else None
        service_id, policy_id, assignees = self._new_incident_refs(wanted)
        key = wanted.get("incident_key")
        if key is not None and any(i.incident_key == key and i.service_id == service_id
                                   and i.status != "resolved" for i in self.incidents.values()):
            raise _bad("Arguments Caused Error", 2002,
                       "Open incident with matching dedup key already exists on this service")
        urgency = wanted.get("urgency", "high")
        if urgency not in ("high", "low"):
            raise _bad("Invalid Input Provided", 2001, "Urgency must be high or low")
        details = (wanted.get("body") or {}).get("details")
        new_id = f"PI{next(self._counter):05d}"
        incident = PdIncident(new_id, wanted["title"], service_id, number=1000 + len(self.incidents),
                              incident_key=key, urgency=urgency, escalation_policy_id=policy_id,
                              assignee_ids=assignees, details=details, created_by=requester)
        self.incidents[new_id] = incident
        return web.json_response({"incident": self._incident_json(incident)}, status=201)

    def _new_incident_refs(self, wanted: Any) -> tuple[str, str | None, list[str]]:
        """Service, escalation policy and assignees of a new incident, each checked."""
        if not isinstance(wanted, dict) or wanted.get("type") != "incident" \
                or not isinstance(wanted.get("title"), str) or not wanted["title"].strip():
            raise _bad("Invalid Input Provided", 2001, "incident needs type \"incident\" and a "
                                                       "title")
        service = wanted.get("service")
        if not isinstance(service, dict) or service.get("type") != "service_reference" \
                or service.get("id") not in self.services:
            raise _bad("Invalid Input Provided", 2001, "Service not found")
        policy = wanted.get("escalation_policy")
        if policy is not None and (not isinstance(policy, dict) or policy.get("type") !=
                                   "escalation_policy_reference"
                                   or policy.get("id") not in self.escalation_policies):
            raise _bad("Invalid Input Provided", 2001, "Escalation Policy not found")
        assignees = []
        for a in wanted.get("assignments") or []:
            assignee = a.get("assignee") if isinstance(a, dict) else None
            if not isinstance(assignee, dict) or assignee.get("type") != "user_reference" \
                    or assignee.get("id") not in self.users:
                raise _bad("Invalid Input Provided", 2001, "Assignee not found")
            assignees.append(assignee["id"])
        if assignees and policy is not None:
            raise _bad("Invalid Input Provided", 2001,
                       "Assignments cannot be specified with an escalation policy")
        return service["id"], policy["id"] if policy else None, assignees

    def _list_incidents(self, request: web.Request) -> web.Response:
        query = _query(request, {"incident_key", "limit", "offset"})
        key = query.get("incident_key")
        found = [self._incident_json(i) for i in self.incidents.values()
                 if key is None or i.incident_key == key]
        return self._page(query, "incidents", found)

    def _oncalls(self, request: web.Request) -> web.Response:
        query = _query(request, {"include[]", "earliest", "schedule_ids[]",
                                 "escalation_policy_ids[]", "since", "until", "limit", "offset"})
        includes = query.getall("include[]", [])
        if set(includes) - {"users"} or query.get("earliest", "true") != "true":
            raise _bad("Invalid Input Provided", 2001, "FakePagerDuty takes include[]=users and "
                                                       "earliest=true only")
        since, until = _time_range(query.get("since"), query.get("until"))
        found = sorted((o for o in self.oncalls if _matches(o, query, since, until)),
                       key=lambda o: (o.escalation_policy_id, o.escalation_level,
                                      o.start or datetime.min.replace(tzinfo=timezone.utc)))
        if "earliest" in query:
            kept: dict[tuple, PdOnCall] = {}
            for oncall in found:
                kept.setdefault((oncall.escalation_policy_id, oncall.escalation_level,
                                 oncall.user_id), oncall)
            found = list(kept.values())
        return self._page(query, "oncalls", [self._oncall_json(o, includes) for o in found])

    def _services(self, request: web.Request) -> web.Response:
        query = _query(request, {"limit", "offset"})
        services = sorted(self.services.items(), key=lambda item: item[1].lower())
        return self._page(query, "services", [self._ref("service", sid, name) | {"name": name}
                                              for sid, name in services])

    def _service_dependencies(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        if service_id not in self.services:
            raise Refused(_error(404, "Not Found", 2100))
        return web.json_response({"relationships": [
            {"id": d.id, "type": "service_dependency",
             "supporting_service": {"id": d.supporting_service_id,
                                    "type": "technical_service_reference"},
             "dependent_service": {"id": d.dependent_service_id,
                                   "type": "technical_service_reference"}}
            for d in self.dependencies
            if service_id in (d.supporting_service_id, d.dependent_service_id)]})

    # ---- helpers -------------------------------------------------------------------------------

    def _requester(self, email: str | None) -> str:
        if email is None:
            raise _bad("Invalid Input Provided", 2001, "You must specify a user's email address in "
                                                       "the \"From\" header to perform this action")
        user = next((u for u in self.users.values() if u.email.lower() == email.lower()), None)
        if user is None:
            raise _bad("Requester User Not Found", 1008)
        return user.id

    def _incident_or_404(self, request: web.Request) -> PdIncident:
        incident = self.incidents.get(request.match_info["id"])
        if incident is None:
            raise Refused(_error(404, "Not Found", 2100))
        return incident

    def _page(self, query: Any, key: str, items: list) -> web.Response:
        try:
            limit, offset = min(int(query.get("limit", 25)), MAX_LIMIT), int(query.get("offset", 0))
        except ValueError:
            raise _bad("Invalid Input Provided", 2001,
                       "limit and offset must be integers") from None
        return web.json_response({key: items[offset:offset + limit], "limit": limit,
                                  "offset": offset, "more": offset + limit < len(items),
                                  "total": None})

    def _ref(self, kind: str, id: str, summary: str) -> dict[str, Any]:
        return {"id": id, "type": f"{kind}_reference", "summary": summary,
                "self": f"{self.base_url}/{kind}s/{id}"}

    def _incident_json(self, incident: PdIncident) -> dict[str, Any]:
        out = {**self._ref("incident", incident.id, incident.title), "type": "incident",
               "title": incident.title, "status": incident.status,
               "incident_number": incident.number or None, "incident_key": incident.incident_key,
               "urgency": incident.urgency,
               "html_url": f"https://shopfront.pagerduty.com/incidents/{incident.id}",
               "service": self._ref("service", incident.service_id,
                                    self.services.get(incident.service_id, "")),
               "assignments": [{"assignee": self._ref("user", u, self.users[u].name)}
                               for u in incident.assignee_ids if u in self.users]}
        if incident.escalation_policy_id:
            out["escalation_policy"] = self._ref(
                "escalation_policy", incident.escalation_policy_id,
                self.escalation_policies[incident.escalation_policy_id])
        return out

    def _oncall_json(self, oncall: PdOnCall, includes: list[str]) -> dict[str, Any]:
        user = self.users[oncall.user_id]
        user_json = self._ref("user", user.id, user.name)
        if "users" in includes:
            user_json |= {"type": "user", "name": user.name, "email": user.email}
        schedule = (self._ref("schedule", oncall.schedule_id, self.schedules[oncall.schedule_id])
                    if oncall.schedule_id else None)
        policy_id = oncall.escalation_policy_id
        return {"escalation_policy": self._ref("escalation_policy", policy_id,
                                               self.escalation_policies[policy_id]),
                "escalation_level": oncall.escalation_level, "schedule": schedule,
                "user": user_json, "start": _iso(oncall.start), "end": _iso(oncall.end)}


def _matches(oncall: PdOnCall, query: Any, since: datetime, until: datetime) -> bool:
    filters = (("schedule_ids[]", oncall.schedule_id),
               ("escalation_policy_ids[]", oncall.escalation_policy_id))
    return ((oncall.start is None or oncall.start <= until)
            and (oncall.end is None or oncall.end > since)
            and all(value in query.getall(name) for name, value in filters if name in query))


def _time_range(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """Both default to now: a bare query lists who is on call right now."""
    try:
        start = _parse_time(since) if since else _now()
        end = _parse_time(until) if until else start
    except ValueError:
        raise _bad("Invalid time values in 'since' and/or 'until' parameters", 2004) from None
    return start, end


def _query(request: web.Request, allowed: set[str]) -> Any:
    if unknown := sorted(set(request.query) - allowed):
        raise _bad("Invalid Input Provided", 2001,
                   f"FakePagerDuty does not take the query parameter(s) {unknown} here")
    return request.query


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_body(message: str, code: int, *errors: str) -> dict[str, Any]:
    details = {"errors": list(errors)} if errors else {}
    return {"error": {"message": message, "code": code, **details}}


def _error(status: int, message: str, code: int, *errors: str) -> web.Response:
    return web.json_response(_error_body(message, code, *errors), status=status)


def _bad(message: str, code: int, *errors: str) -> Refused:
    return Refused(_error(400, message, code, *errors))
