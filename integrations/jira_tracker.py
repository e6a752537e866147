"""JIRA Cloud tasks for follow-ups (post-mortems, action items), through the `jira` library.

The library is synchronous (requests), so every call runs in a worker thread: called on the event
loop it would stall the whole bot. Its own retries are off (`max_retries=0`): they sleep inside
the thread and, worse, re-send a POST whose answer was lost, creating a second issue. The outbox
owns retries; this client only says whether one is worth it.

Creation is safe to re-run: every task carries a label unique to the thing it tracks
(`firebell-INC-7-postmortem`), and `ensure_task` searches for that label before it creates.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import requests
from jira import JIRA
from jira.exceptions import JIRAError

from integrations.errors import PermanentFailure, TemporaryFailure, retry_after_seconds

log = logging.getLogger("firebell.jira")

T = TypeVar("T")
SEARCH_CHUNK = 50  # keys per `key in (...)` search: keeps the JQL and the page small
_MISSING_KEY = re.compile(r"issue (?:with )?key '([^']+)'", re.I)


@dataclass(frozen=True)
class TaskRef:
    key: str
    url: str
    created: bool = False  # True when this call created it (False: found by its label)
    linked: bool | None = None  # None: no link asked; False: the issue to link to is gone


@dataclass(frozen=True)
class TaskStatus:
    status_name: str
    done: bool  # statusCategory "done": whatever the workflow calls its final states
    due_date: date | None


class JiraTracker:
    def __init__(self, url: str, email: str, api_token: str, *, timeout: float = 10.0,
                 issue_type: str = "Task"):
        self._url = url.rstrip("/")
        self._email = email
        self._token = api_token
        self._timeout = (min(3.05, timeout), timeout)  # (connect, read)
        self._issue_type = issue_type
        self._client: JIRA | None = None
        self._client_lock = threading.Lock()

    def browse_url(self, key: str) -> str:
        return f"{self._url}/browse/{key}"

    # ---- public, async -------------------------------------------------------------------

    async def ensure_task(self, project: str, summary: str, description: str,
                          labels: Sequence[str], assignee_email: str | None = None,
                          due_date: date | str | None = None,
                          link_to: str | None = None) -> TaskRef:
        """The task labelled `labels[0]` (unique per tracked thing) in `project`, created if
        missing. The other labels are only set on creation."""
        if not labels or not labels[0]:
            raise ValueError("ensure_task needs a unique label first in `labels`")
        due = due_date.isoformat() if isinstance(due_date, date) else due_date
        return await self._run(lambda: self._ensure_task(
            project, summary, description, list(labels), assignee_email, due, link_to),
            f"task {labels[0]}", project)

    async def statuses(self, keys: Iterable[str]) -> dict[str, TaskStatus]:
        """Status of each key that still exists (deleted issues are left out)."""
        keys = list(dict.fromkeys(k.upper() for k in keys if k))
        found: dict[str, TaskStatus] = {}
        for start in range(0, len(keys), SEARCH_CHUNK):
            chunk = keys[start:start + SEARCH_CHUNK]
            found.update(await self._run(lambda c=chunk: self._statuses(c), "status look-up"))
        return found

    # ---- the work, in a thread -------------------------------------------------------------

    def _ensure_task(self, project: str, summary: str, description: str, labels: list[str],
                     assignee_email: str | None, due: str | None, link_to: str | None) -> TaskRef:
        existing = self._find_by_label(project, labels[0])
        if existing is not None:
            key, created = existing["key"], False
            linked = self._ensure_link(key, link_to, _linked_keys(existing))
        else:
            key = self._create(project, summary, description, labels, assignee_email, due)
            created, linked = True, self._ensure_link(key, link_to, set())
        return TaskRef(key=key, url=self.browse_url(key), created=created, linked=linked)

    def _find_by_label(self, project: str, label: str) -> dict[str, Any] | None:
        jql = (f"project = {_jql_string(project)} AND labels = {_jql_string(label)} "
               "ORDER BY created ASC")
        page = self._jira().enhanced_search_issues(
            jql, maxResults=1, fields=["summary", "issuelinks"], json_result=True)
        issues = page.get("issues") or []
        return issues[0] if issues else None  # the oldest, should a person have copied the label

    def _create(self, project: str, summary: str, description: str, labels: list[str],
                assignee_email: str | None, due: str | None) -> str:
        fields: dict[str, Any] = {"project": {"key": project},
                                  "issuetype": {"name": self._issue_type}, "summary": summary,
                                  "description": description, "labels": labels}
        if due:
            fields["duedate"] = due
        account_id = self._account_id(assignee_email) if assignee_email else None
        if account_id:
            fields["assignee"] = {"accountId": account_id}
        try:
            issue = self._jira().create_issue(fields=fields, prefetch=False)
        except JIRAError as exc:
            if not account_id or _field_errors(exc).keys() != {"assignee"}:
                raise
            # The person exists but cannot be assigned here: a task nobody owns yet beats none.
            log.warning("JIRA %s: %s cannot be assigned; creating the task unassigned",
                        project, assignee_email)
            del fields["assignee"]
            issue = self._jira().create_issue(fields=fields, prefetch=False)
        return str(issue.key)

    def _account_id(self, email: str) -> str | None:
        users = self._jira().search_users(query=email, maxResults=10)
        exact = [u for u in users if str(getattr(u, "emailAddress", "")).lower() == email.lower()]
        # Cloud hides e-mails by the user's privacy setting; one hit for the address is still it.
        hidden = [u for u in users if not getattr(u, "emailAddress", None)]
        chosen = exact or (hidden if len(users) == 1 else [])
        if not chosen:
            log.info("JIRA has no account for %s; the task stays unassigned", email)
            return None
        return str(chosen[0].accountId)

    def _ensure_link(self, key: str, link_to: str | None, already: set[str]) -> bool | None:
        if not link_to:
            return None
        if link_to.upper() in already:
            return True
        try:
            self._jira().create_issue_link("Relates", inwardIssue=key, outwardIssue=link_to)
        except JIRAError as exc:
            if exc.status_code != 404:
                raise
            log.warning("JIRA: cannot link %s to %s: %s", key, link_to, exc.text)
            return False
        return True

    def _statuses(self, keys: list[str]) -> dict[str, TaskStatus]:
        # Jira refuses the whole search when one key is gone: drop that key and ask again.
        while keys:
            try:
                return self._search_statuses(keys)
            except JIRAError as exc:
                missing = {m.upper() for m in _MISSING_KEY.findall(exc.text or "")}
                if exc.status_code != 400 or not missing & set(keys):
                    raise
                keys = [k for k in keys if k not in missing]
        return {}

    def _search_statuses(self, keys: list[str]) -> dict[str, TaskStatus]:
        jql = f"key in ({', '.join(keys)})"
        found: dict[str, TaskStatus] = {}
        token = None
        while True:
            page = self._jira().enhanced_search_issues(
                jql, nextPageToken=token, maxResults=SEARCH_CHUNK,
                fields=["status", "duedate"], json_result=True)
            for issue in page.get("issues") or []:
                found[issue["key"]] = _task_status(issue.get("fields") or {})
            token = page.get("nextPageToken")
            if not token or page.get("isLast", True):
                return found

    def _jira(self) -> JIRA:
        # Built on first use: the constructor itself asks the server for serverInfo (which also
        # puts the library in Cloud mode, where search uses /search/jql).
        with self._client_lock:
            if self._client is None:
                self._client = JIRA(server=self._url, basic_auth=(self._email, self._token),
                                    max_retries=0, timeout=self._timeout)
            return self._client

    # ---- errors ------------------------------------------------------------------------------

    async def _run(self, work: Callable[[], T], what: str, project: str | None = None) -> T:
        try:
            return await asyncio.to_thread(work)
        except JIRAError as exc:
            # `from None`: a JIRAError's str() carries the request headers, Basic auth included.
            raise self._failure(exc, what, project) from None
        except requests.Timeout:
            raise TemporaryFailure(f"JIRA {what}: timed out after {self._timeout[1]}s") from None
        except requests.RequestException as exc:
            raise TemporaryFailure(
                f"JIRA {what}: {type(exc).__name__} (JIRA unreachable)") from None

    def _failure(self, exc: JIRAError, what: str, project: str | None) -> Exception:
        status, text = exc.status_code, (exc.text or "").strip()[:300]
        headers = exc.response.headers if exc.response is not None else {}
        if status is None or status in (408, 425, 429) or status >= 500:
            return TemporaryFailure(f"JIRA {what}: HTTP {status} {text}",
                                    retry_after_seconds(headers.get("Retry-After")))
        if status == 401:
            return PermanentFailure("JIRA refused the credentials: check JIRA_EMAIL and "
                                    "JIRA_API_TOKEN (an API token, not the password)")
        if project and ("'project'" in text or "valid project" in text):
            return PermanentFailure(f"JIRA project {project} does not exist (or {self._email} "
                                    "cannot see it): check the JIRA project key in the catalog")
        if status == 403:
            return PermanentFailure(f"JIRA {what}: {self._email} lacks permission ({text})")
        return PermanentFailure(f"JIRA {what}: HTTP {status} {text}")


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _linked_keys(issue: dict[str, Any]) -> set[str]:
    keys = set()
    for link in (issue.get("fields") or {}).get("issuelinks") or []:
        for side in ("inwardIssue", "outwardIssue"):
            if side in link:
                keys.add(str(link[side].get("key", "")).upper())
    return keys


def _task_status(fields: dict[str, Any]) -> TaskStatus:
    status = fields.get("status") or {}
    due = fields.get("duedate")
    return TaskStatus(status_name=str(status.get("name", "")),
                      done=(status.get("statusCategory") or {}).get("key") == "done",
                      due_date=date.fromisoformat(due) if due else None)


def _field_errors(exc: JIRAError) -> dict[str, Any]:
    try:
        return dict(exc.response.json().get("errors") or {})
    except (AttributeError, ValueError):
        return {}
