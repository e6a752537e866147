"""The Bot Framework Connector REST API (v3), for posting and updating cards from the outbox.

botbuilder's own client sends with blocking `requests` calls in a thread pool and rebuilds a
retry policy per call; the worker posts many cards during a storm, so it speaks the (small)
protocol directly with httpx. Replies to the activity being handled still go through botbuilder.

Every call first asks the ServiceUrlPolicy: a conversation stored before the policy (or under a
wider one) that points at a host Firebell must not call is a PermanentFailure, parked and
visible, never retried and never sent (not even a token request).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from integrations.errors import PermanentFailure, TemporaryFailure, classify_status
from integrations.service_urls import ServiceUrlPolicy

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"


@dataclass(frozen=True)
class ConnectorCredentials:
    app_id: str = ""
    password: str = ""
    login_url: str = "https://login.microsoftonline.com/botframework.com"
    scope: str = BOT_FRAMEWORK_SCOPE

    @property
    def anonymous(self) -> bool:
        return not self.app_id


class TeamsConnector:
    def __init__(self, credentials: ConnectorCredentials, *, timeout: float = 10.0,
                 client: httpx.AsyncClient | None = None,
                 service_urls: ServiceUrlPolicy | None = None):
        self._creds = credentials
        # Default: what the credentials imply with Microsoft's hosts (app.py passes its own).
        self._service_urls = service_urls or ServiceUrlPolicy(anonymous=credentials.anonymous)
        self._http = client or httpx.AsyncClient(timeout=timeout)
        self._token: tuple[str, float] | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post a new message in the conversation; returns its activity id."""
        url = f"{_base(service_url)}/v3/conversations/{_seg(conversation_id)}/activities"
        body = await self._call("POST", url, activity, "post message")
        return str(body.get("id") or "")

    async def update(self, service_url: str, conversation_id: str, activity_id: str,
                     activity: dict[str, Any]) -> None:
        url = (f"{_base(service_url)}/v3/conversations/{_seg(conversation_id)}"
               f"/activities/{_seg(activity_id)}")
        await self._call("PUT", url, {**activity, "id": activity_id}, "update message")

    async def members(self, service_url: str, conversation_id: str) -> list[dict[str, Any]]:
        url = f"{_base(service_url)}/v3/conversations/{_seg(conversation_id)}/members"
        body = await self._call("GET", url, None, "get members")
        return body if isinstance(body, list) else []

    async def _call(self, method: str, url: str, payload: Any, what: str) -> Any:
        refused = self._service_urls.refusal(url)
        if refused:
            raise PermanentFailure(f"Teams {what}: not sent, {refused}")
        headers = {"Authorization": f"Bearer {await self._bearer()}"} if not self._creds.anonymous else {}
        try:
            resp = await self._http.request(method, url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(f"Teams {what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"Teams {what}: {type(exc).__name__} {exc}") from exc
        if resp.status_code == 401 and not self._creds.anonymous:
            self._token = None  # maybe expired early; the retry fetches a new one
            raise TemporaryFailure(f"Teams {what}: HTTP 401 (token refused)")
        if resp.status_code >= 400:
            raise classify_status(resp.status_code, resp.text, resp.headers.get("Retry-After"),
                                  f"Teams {what}")
        try:
            return resp.json() if resp.content else {}
        except ValueError:
            return {}

    async def _bearer(self) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        url = self._creds.login_url.rstrip("/") + "/oauth2/v2.0/token"
        data = {"grant_type": "client_credentials", "client_id": self._creds.app_id,
                "client_secret": self._creds.password, "scope": self._creds.scope}
        try:
            resp = await self._http.post(url, data=data)
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"Bot Framework token: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            err = classify_status(resp.status_code, resp.text, resp.headers.get("Retry-After"),
                                  "Bot Framework token")
            raise err if isinstance(err, TemporaryFailure) else PermanentFailure(str(err))
        body = resp.json()
        lifetime = float(body.get("expires_in", 3600))
        self._token = (body["access_token"], time.monotonic() + max(60.0, lifetime - 300))
        return self._token[0]


def _base(service_url: str) -> str:
    return service_url.rstrip("/")


def _seg(value: str) -> str:
    # Teams ids contain ':', '@' and ';' (19:abc@thread.tacv2;messageid=1): escape them all.
    return quote(value, safe="")
