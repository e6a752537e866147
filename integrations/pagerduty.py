"""PagerDuty REST API v2: acknowledge/resolve incidents, create one (a page from Teams), who is
on call, services and their technical dependencies.

Status changes are idempotent by nature (asking for the state an incident is already in changes
nothing), so a re-run after a lost answer is harmless; the result says what actually happened.
PagerDuty's rate limiter sends no Retry-After but `ratelimit-reset` (seconds): that is what the
outbox is told to wait.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, NamedTuple
from urllib.parse import quote

import httpx

from integrations.errors import PermanentFailure, TemporaryFailure, classify_status

ACCEPT_V2 = "application/vnd.pagerduty+json;version=2"
PAGE_SIZE = 100  # PagerDuty's maximum `limit`
INCIDENT_ALREADY_RESOLVED = 1001
REQUESTER_NOT_FOUND = 1008
READ_ONLY_TOKEN = 2010
# POST /incidents with the incident_key of an incident still open on that service: PagerDuty
# refuses it (400, "Arguments Caused Error" 2002, "Open incident with matching dedup key already
# exists on this service"). For a retried create, that means "made by the earlier attempt".
# Recognised by its text: code 2002 covers other bad arguments too.
_DUPLICATE_TEXT = "matching dedup key already exists"


@dataclass(frozen=True)
class StatusChange:
    incident_id: str
    requested: str  # "acknowledged" | "resolved"
    status: str  # the incident's status now
    changed: bool  # False: it already was there (or past it: resolved beats acknowledged)


@dataclass(frozen=True)
class OnCall:
    email: str
    name: str
    escalation_level: int
    schedule_id: str | None  # None: on call directly through the escalation policy
    policy_id: str
    start: datetime | None  # None: always on call
    end: datetime | None


@dataclass(frozen=True)
class CreatedIncident:
    id: str
    number: int | None
    html_url: str | None
    status: str
    created: bool  # False: an earlier attempt had made it (found by its incident_key)


class Service(NamedTuple):
    id: str
    name: str


class ServiceDependency(NamedTuple):
    dependent_service_id: str  # depends on ...
    supporting_service_id: str  # ... this one


class PagerDutyClient:
    def __init__(self, *, token: str, from_email: str, api_url: str = "https://api.pagerduty.com",
                 timeout: float = 10.0, client: httpx.AsyncClient | None = None):
        self._base = api_url.rstrip("/")
        self._from = from_email
        self._headers = {"Authorization": f"Token token={token}", "Accept": ACCEPT_V2,
                         "From": from_email}
        self._http = client or httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def set_status(self, incident_id: str, status: str) -> StatusChange:
        if status not in ("acknowledged", "resolved"):
            raise ValueError(f"PagerDuty status must be acknowledged or resolved, not {status!r}")
        # Look first: "already there" then needs no write, and the result can say so.
        current = (await self._incident(incident_id))["status"]
        if current == status or current == "resolved":
            return StatusChange(incident_id, status, current, changed=False)
        body = {"incident": {"type": "incident_reference", "status": status}}
        try:
            answer = await self._call("PUT", f"/incidents/{_seg(incident_id)}",
                                      f"set {incident_id} {status}", json=body,
                                      not_found=f"PagerDuty incident {incident_id} not found")
        except _AlreadyResolved:
            return StatusChange(incident_id, status, "resolved", changed=False)  # someone beat us
        return StatusChange(incident_id, status, answer["incident"]["status"], changed=True)

    async def create_incident(self, *, title: str, service_id: str, incident_key: str,
                              details: str, escalation_policy_id: str | None = None,
                              assignee_ids: Iterable[str] = (), urgency: str = "high"
                              ) -> CreatedIncident:
        """A new incident (it pages whoever its escalation policy or assignees say), exactly once
        per `incident_key`: PagerDuty refuses a second open incident with the same key on the
        service, and then the one the key already names is returned. Assignees and an
        escalation policy exclude each other (PagerDuty's rule)."""
        incident: dict[str, Any] = {
            "type": "incident", "title": title[:1024], "urgency": urgency,
            "incident_key": incident_key,
            "service": {"id": service_id, "type": "service_reference"},
            "body": {"type": "incident_body", "details": details}}
        if escalation_policy_id:
            incident["escalation_policy"] = {"id": escalation_policy_id,
                                             "type": "escalation_policy_reference"}
        assignments = [{"assignee": {"id": a, "type": "user_reference"}} for a in assignee_ids]
        if assignments:
            incident["assignments"] = assignments
        try:
            body = await self._call("POST", "/incidents", f"create incident {incident_key}",
                                    not_found=f"PagerDuty service {service_id} not found",
                                    json={"incident": incident})
        except _DuplicateKey:
            found = await self.find_incident_by_key(incident_key)
            if found is None:  # refused as a duplicate, yet not listed: ask again later
                raise TemporaryFailure(f"PagerDuty has an open incident {incident_key} it does "
                                       "not list yet") from None
            return found
        return _created(body["incident"], created=True)

    async def find_incident_by_key(self, incident_key: str) -> CreatedIncident | None:
        """The incident PagerDuty made under this incident_key (last 30 days), if any."""
        body = await self._call("GET", "/incidents", f"find incident {incident_key}",
                                not_found=None, params=[("incident_key", incident_key)])
        found = [i for i in body.get("incidents") or [] if i.get("incident_key") == incident_key]
        return _created(found[0], created=False) if found else None

    async def oncall(self, schedule_ids: Iterable[str] | None = None,
                     escalation_policy_ids: Iterable[str] | None = None,
                     at: datetime | None = None) -> list[OnCall]:
        """Who is on call at `at` (default now): one entry per policy, level and person."""
        params: list[tuple[str, str]] = [("include[]", "users"), ("earliest", "true")]
        # The brackets matter: `schedule_ids=X` is silently ignored and returns everyone.
        params += [("schedule_ids[]", s) for s in schedule_ids or ()]
        params += [("escalation_policy_ids[]", p) for p in escalation_policy_ids or ()]
        if at is not None:
            moment = _iso(at)
            params += [("since", moment), ("until", moment)]
        pages = self._pages("/oncalls", "oncalls", params, "on-calls")
        return [_oncall(item) async for item in pages]

    async def services(self) -> list[Service]:
        return [Service(str(s["id"]), str(s.get("name") or s.get("summary") or ""))
                async for s in self._pages("/services", "services", [], "services")]

    async def technical_service_dependencies(
            self, service_ids: Iterable[str]) -> list[ServiceDependency]:
        """Every immediate dependency touching these services, each once (PagerDuty lists a
        relationship from both of its ends)."""
        found: dict[ServiceDependency, None] = {}
        for service_id in dict.fromkeys(service_ids):
            path = f"/service_dependencies/technical_services/{_seg(service_id)}"
            body = await self._call("GET", path, f"dependencies of {service_id}",
                                    not_found=f"PagerDuty service {service_id} not found")
            for rel in body.get("relationships") or []:
                found[ServiceDependency(str(rel["dependent_service"]["id"]),
                                        str(rel["supporting_service"]["id"]))] = None
        return list(found)

    # ---- HTTP ----------------------------------------------------------------------------

    async def _incident(self, incident_id: str) -> dict[str, Any]:
        body = await self._call("GET", f"/incidents/{_seg(incident_id)}",
                                f"get incident {incident_id}",
                                not_found=f"PagerDuty incident {incident_id} not found")
        return body["incident"]

    async def _pages(self, path: str, key: str, params: list[tuple[str, str]],
                     what: str) -> AsyncIterator[dict[str, Any]]:
        offset = 0
        while True:
            page = await self._call("GET", path, what, not_found=None,
                                    params=[*params, ("limit", str(PAGE_SIZE)),
                                            ("offset", str(offset))])
            items = page.get(key) or []
            for item in items:
                yield item
            if not page.get("more") or not items:
                return
            offset += len(items)

    async def _call(self, method: str, path: str, what: str, *, not_found: str | None,
                    params: Any = None, json: Any = None) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, self._base + path, params=params, json=json,
                                            headers=self._headers)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"PagerDuty {what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"PagerDuty {what}: {type(exc).__name__} {exc}") from exc
        if resp.status_code >= 400:
            raise self._failure(resp, what, not_found)
        try:
            return resp.json() if resp.content else {}
        except ValueError:
            return {}

    def _failure(self, resp: httpx.Response, what: str, not_found: str | None) -> Exception:
        status = resp.status_code
        message, code = _error(resp)
        if status == 429 or status >= 500 or status == 408:
            wait = resp.headers.get("Retry-After") or resp.headers.get("ratelimit-reset")
            return classify_status(status, message, wait, f"PagerDuty {what}")
        if status == 400 and code == INCIDENT_ALREADY_RESOLVED:
            return _AlreadyResolved(f"PagerDuty {what}: {message}")
        if status == 400 and _DUPLICATE_TEXT in message.lower():
            return _DuplicateKey(f"PagerDuty {what}: {message}")
        if status == 401:
            return PermanentFailure("PagerDuty refused the API token: check PAGERDUTY_API_TOKEN")
        if status == 403 and code == READ_ONLY_TOKEN:
            return PermanentFailure("PagerDuty API token is read-only: PAGERDUTY_API_TOKEN needs "
                                    "a full-access (or user) token to change incidents")
        if code == REQUESTER_NOT_FOUND or "From" in message:
            return PermanentFailure(f"PagerDuty has no user {self._from}: set PAGERDUTY_FROM_EMAIL "
                                    "to the e-mail of a PagerDuty user")
        if status == 404 and not_found:
            return PermanentFailure(not_found)
        return PermanentFailure(f"PagerDuty {what}: HTTP {status} {message} (code {code})")


class _AlreadyResolved(PermanentFailure):
    pass


class _DuplicateKey(PermanentFailure):
    pass


def _created(item: dict[str, Any], *, created: bool) -> CreatedIncident:
    number = item.get("incident_number")
    return CreatedIncident(str(item["id"]), number if isinstance(number, int) else None,
                           item.get("html_url"), str(item.get("status") or "triggered"), created)


def _error(resp: httpx.Response) -> tuple[str, int | None]:
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return resp.text[:200], None
    details = "; ".join(str(e) for e in error.get("errors") or [])
    message = str(error.get("message", "")) + (f" ({details})" if details else "")
    return message, error.get("code")


def _oncall(item: dict[str, Any]) -> OnCall:
    user = item.get("user") or {}
    schedule = item.get("schedule") or {}
    return OnCall(email=str(user.get("email") or ""),
                  name=str(user.get("name") or user.get("summary") or ""),
                  escalation_level=int(item.get("escalation_level") or 1),
                  schedule_id=schedule.get("id"), policy_id=str(item["escalation_policy"]["id"]),
                  start=_parse(item.get("start")), end=_parse(item.get("end")))


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seg(value: str) -> str:
    return quote(value, safe="")
