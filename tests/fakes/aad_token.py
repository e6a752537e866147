"""Azure AD's v2 client-credentials token endpoint, mounted into the stand-ins whose clients need a
bearer token: the Bot Connector (botbuilder's MSAL and Firebell's TeamsConnector) and Graph.

Routes (``tenant`` is one path segment; restricted to ``tenant`` and ``adfs`` when given):
  POST {base}/{tenant}/oauth2/v2.0/token           form: grant_type=client_credentials, client_id,
                                                   client_secret, scope=<resource>/.default
  GET  {base}/{tenant}/.well-known/openid-configuration   what MSAL reads first, for an ADFS
                                                   authority (https://127.0.0.1:<port>/adfs)
Errors have AAD's shape: {"error", "error_description", "error_codes", ...}.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from tests.fakes.http_stand_in import RECORD

# The AADSTS errors Firebell tells apart (integrations/graph.py), as Azure AD words them.
UNKNOWN_TENANT = (400, "invalid_request", 90002, "AADSTS90002: Tenant '{tenant}' not found.")
UNKNOWN_CLIENT = (400, "unauthorized_client", 700016, "AADSTS700016: Application with "
                  "identifier '{client}' was not found in the directory '{tenant}'.")
WRONG_SECRET = (401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided.")
NOT_CLIENT_CREDENTIALS = (400, "invalid_request", 900144, "The stand-in serves only "
                          "grant_type=client_credentials with a '<resource>/.default' scope.")


class AadTokenIssuer:
    def __init__(self, clients: dict[str, str], *, tenant: str | None = None,
                 lifetime: int = 3599) -> None:
        self.clients = dict(clients)  # client_id -> client_secret
        self.tenant = tenant
        self.lifetime = lifetime
        self._issued: dict[str, dict] = {}  # token -> {"aud", "exp"}
        self._lock = threading.Lock()

    def routes(self, base_url: Callable[[], str]) -> list[web.RouteDef]:
        self._base_url = base_url
        return [web.post("/{tenant}/oauth2/v2.0/token", self._token, name="token"),
                web.get("/{tenant}/.well-known/openid-configuration", self._discovery,
                        name="oidc_discovery")]

    def _token(self, request: web.Request) -> web.Response:
        form = request[RECORD].body if isinstance(request[RECORD].body, dict) else {}
        tenant = request.match_info["tenant"]
        problem = self._refusal(tenant, form)
        if problem:
            status, error, code, description = problem
            return _aad_error(status, error, code,
                              description.format(tenant=tenant, client=form.get("client_id")))
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = {"aud": form["scope"][: -len("/.default")],
                                   "exp": time.time() + self.lifetime}
        return web.json_response({"token_type": "Bearer", "expires_in": self.lifetime,
                                  "ext_expires_in": self.lifetime, "access_token": token})

    def _refusal(self, tenant: str, form: dict) -> tuple | None:
        if self.tenant and tenant not in (self.tenant, "adfs"):
            return UNKNOWN_TENANT
        if form.get("grant_type") != "client_credentials" or \
                not str(form.get("scope", "")).endswith("/.default"):
            return NOT_CLIENT_CREDENTIALS
        if form.get("client_id") not in self.clients:
            return UNKNOWN_CLIENT
        if form.get("client_secret") != self.clients[form["client_id"]]:
            return WRONG_SECRET
        return None

    def _discovery(self, request: web.Request) -> web.Response:
        base = f"{self._base_url()}/{request.match_info['tenant']}"
        return web.json_response({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        })

    # ---- the protected API's side ------------------------------------------------------------

    def check_bearer(self, authorization: str | None, audience: str) -> str | None:
        """None if ``authorization`` carries a live token issued for ``audience``; otherwise
        the reason, for the 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "Access token is empty."
        with self._lock:
            claims = self._issued.get(token)
        if claims is None:
            return "Access token validation failure. Invalid signature or unknown token."
        if claims["exp"] <= time.time():
            return "Lifetime validation failed, the token is expired."
        if claims["aud"].rstrip("/") != audience.rstrip("/"):
            return "Access token validation failure. Invalid audience."
        return None

    def expire_all(self) -> None:
        """Every token issued so far is expired: clients must fetch a new one."""
        with self._lock:
            for claims in self._issued.values():
                claims["exp"] = 0


def _aad_error(status: int, error: str, code: int, description: str) -> web.Response:
    trace = str(uuid.uuid4())
    return web.json_response({
        "error": error,
        "error_description": f"{description}\r\nTrace ID: {trace}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
    }, status=status)
