"""A stand-in for the Bot Framework token service, to test botbuilder's REAL JWT
validation of incoming activities (no mocks).

``FakeBotFrameworkIdentity`` serves, from a local server:

* the channel OpenID metadata  ``/v1/.well-known/openidconfiguration``
  (same shape as https://login.botframework.com/v1/.well-known/openidconfiguration:
  issuer, authorization_endpoint, jwks_uri, id_token_signing_alg_values_supported,
  token_endpoint_auth_methods_supported),
* its key set ``/v1/.well-known/keys`` (RSA JWKs with kid, x5t, n, e, x5c and the
  Bot-Framework-specific ``endorsements`` list such as ["msteams", "emulator"]),
* the same keys behind an Emulator-style metadata URL
  ``/botframework.com/v2.0/.well-known/openid-configuration``,

and signs RS256 tokens the way the channel does (``sign()``): iss
``https://api.botframework.com``, aud = the bot's app id, ``serviceurl`` claim,
nbf/exp, ``kid`` header.

How botbuilder 4.17.1 validates (read from its source)
-----------------------------------------------------
* ``ConfigurationBotFrameworkAuthentication(config)`` reads attributes (``getattr``,
  so pass an object, not a dict -- ``settings()`` gives a dict, ``config()`` the
  object): ``APP_ID``, ``APP_PASSWORD``, ``APP_TYPE``, ``APP_TENANTID``,
  ``CHANNEL_SERVICE``, ``VALIDATE_AUTHORITY``, ``TO_CHANNEL_FROM_BOT_LOGIN_URL``,
  ``TO_CHANNEL_FROM_BOT_OAUTH_SCOPE``, ``TO_BOT_FROM_CHANNEL_TOKEN_ISSUER``,
  ``OAUTH_URL``, ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL``,
  ``TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL``, ``CALLER_ID``.  If *any* of the
  TO_*/OAUTH_URL/CALLER_ID settings is present it switches to the "parameterized"
  authenticator which uses exactly those values (nothing falls back to the public
  cloud defaults, so set them all -- ``settings()`` does).
* Metadata and keys are fetched by ``JwtTokenExtractor`` with **requests.get()**,
  synchronously, from inside the event loop.  Consequences:
  - the fake must not be served by the test's own event loop (it would deadlock);
    ``HttpStandIn`` runs it in its own thread;
  - no scheme check: plain ``http://`` metadata/JWKS URLs are accepted, so TLS is
    optional here (``tls=True`` works too);
  - to trust the throwaway ``trustme`` CA, set ``REQUESTS_CA_BUNDLE`` to
    ``ca_pem_path``; requests reads it on every call, so ``monkeypatch.setenv``
    works in-process; a subprocess gets it through its environment.  (httpx and
    aiohttp read ``SSL_CERT_FILE`` instead, or take ``client_ssl_context()``.)
  - MSAL, used for the bot's *outgoing* token, does insist on https: see
    ``bot_connector.py``.
* Caches: ``JwtTokenExtractor.metadataCache`` is a class-level dict, metadata URL ->
  ``_OpenIdMetadata``, whose keys are refreshed after 1 day, or on an unknown
  ``kid`` only if the last refresh is more than 1 hour old.  (Firebell replaces that
  class with ``bot.signing_keys.SigningKeys``: same dict, fetched off the loop, with
  its own refresh rules; see there.)  Each fake has its own
  port, hence its own cache entry; ``start()``/``stop()`` and
  ``forget_cached_metadata()`` drop this fake's entries (a later fake may get the
  same port, and a test that rotates keys must call it to make botbuilder refetch).
  No other cache is involved on the CloudAdapter path.
* Failures: claim checks raise ``PermissionError`` -> ``CloudAdapter.process``
  turns it into HTTP 401.  But PyJWT errors (expired token, bad signature) and
  key-lookup errors (unknown ``kid`` -> ``IndexError``, missing endorsement ->
  ``Exception``) are *not* PermissionErrors: they escape ``CloudAdapter.process``
  and aiohttp answers **500** unless the app maps them.  The turn never runs either
  way.  ``test_fake_bot_auth.py`` pins each case.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterable, Optional

import jwt
import trustme
from aiohttp import web
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.http_stand_in import HttpStandIn

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
DEFAULT_ENDORSEMENTS = ("msteams", "emulator", "webchat", "directline")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _self_signed_der(private_key: rsa.RSAPrivateKey) -> bytes:
    """Bot Framework publishes each key with its certificate (x5c); make one."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake.botframework.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class SigningKey:
    """An RSA key pair plus the metadata Bot Framework publishes with it."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate_der: bytes
    endorsements: list[str] = field(default_factory=lambda: list(DEFAULT_ENDORSEMENTS))

    @classmethod
    def generate(cls, kid: Optional[str] = None, endorsements: Optional[Iterable[str]] = None) -> "SigningKey":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = cls(kid or uuid.uuid4().hex[:27], private_key, _self_signed_der(private_key))
        if endorsements is not None:
            key.endorsements = list(endorsements)
        return key

    @property
    def x5t(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha1(self.certificate_der).digest()).rstrip(b"=").decode()

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwk(self) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(self.certificate_der).decode()],
            "endorsements": list(self.endorsements),
        }


class FakeBotFrameworkIdentity(HttpStandIn):
    """Bot Framework OpenID metadata + JWKS, and a signer for channel tokens."""

    def __init__(
        self,
        *,
        app_id: str = "00000000-0000-0000-0000-00000000b07a",
        tls: bool = False,
        ca: Optional[trustme.CA] = None,
        issuer: str = BOT_FRAMEWORK_ISSUER,
    ) -> None:
        super().__init__(tls=tls, ca=ca)
        self.app_id = app_id
        self.issuer = issuer
        self.default_key = SigningKey.generate()
        self.published: dict[str, SigningKey] = {self.default_key.kid: self.default_key}
        self._jwks_cache: Optional[dict] = None
        self._answer_after = 0.0  # see slow()

    def slow(self, seconds: float = 8.0) -> None:
        """Make the metadata and key endpoints answer only after ``seconds`` (0: promptly
        again), like a Microsoft endpoint on a bad day.  Requests are recorded on
        arrival, so a test sees a fetch start at once."""
        with self._lock:
            self._answer_after = seconds

    async def _take_time(self) -> None:
        with self._lock:
            delay = self._answer_after
        if delay:
            await asyncio.sleep(delay)

    # ---- lifecycle: keep botbuilder's class-level metadata cache clean ------------------

    async def start(self) -> str:
        base = await super().start()
        self.forget_cached_metadata()  # a previous fake may have had this port
        return base

    async def stop(self) -> None:
        self.forget_cached_metadata()
        await super().stop()

    def forget_cached_metadata(self) -> None:
        """Drop botbuilder's cached metadata/keys for this fake's URLs."""
        for url in (self.metadata_url, self.emulator_metadata_url):
            JwtTokenExtractor.metadataCache.pop(url, None)

    # ---- URLs and botbuilder configuration ---------------------------------------------

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    @property
    def emulator_metadata_url(self) -> str:
        return f"{self.base_url}/botframework.com/v2.0/.well-known/openid-configuration"

    def settings(self, *, app_password: str = "fake-bot-password", connector=None, **overrides) -> dict:
        """Settings for ``ConfigurationBotFrameworkAuthentication`` trusting this fake.

        Pass ``connector=FakeBotConnector(tls=True, app_id=<same app id>)`` to send
        the bot's replies to it with app credentials (its password is used).
        Without one, the outgoing login URL still points at loopback, so a stray
        reply fails locally instead of calling login.microsoftonline.com.
        """
        if connector is not None:
            if connector.app_id != self.app_id:
                raise ValueError("connector and identity must share the bot's app id")
            app_password = connector.app_password
        settings = {
            "APP_ID": self.app_id,
            "APP_PASSWORD": app_password,
            "APP_TYPE": "MultiTenant",
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": self.metadata_url,
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": self.issuer,
            "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": self.emulator_metadata_url,
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"https://127.0.0.1:{self.port}/adfs",
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": BOT_FRAMEWORK_ISSUER,
            "OAUTH_URL": self.base_url,  # user-token service; unused by Firebell
            "CALLER_ID": "urn:botframework:azure",
            "VALIDATE_AUTHORITY": True,
        }
        if connector is not None:
            settings.update(connector.bot_settings())
        settings.update(overrides)
        return settings

    def config(self, **kwargs) -> SimpleNamespace:
        """``settings()`` as the attribute object botbuilder expects."""
        return SimpleNamespace(**self.settings(**kwargs))

    # ---- keys and tokens -----------------------------------------------------------------

    def new_key(
        self, *, kid: Optional[str] = None, endorsements: Optional[Iterable[str]] = None, publish: bool = True
    ) -> SigningKey:
        """A fresh key; unpublished keys sign tokens botbuilder cannot verify.  After
        publishing a key, call ``forget_cached_metadata()`` if botbuilder already
        fetched the key set (it would not refetch for an hour)."""
        key = SigningKey.generate(kid, endorsements)
        if publish:
            with self._lock:
                self.published[key.kid] = key
                self._jwks_cache = None
        return key

    def sign(
        self,
        *,
        service_url: str,
        audience: Optional[str] = None,
        issuer: Optional[str] = None,
        expired: bool = False,
        key: Optional[SigningKey] = None,
        kid: Optional[str] = None,
        claims_overrides: Optional[dict[str, Any]] = None,
        lifetime: int = 3600,
    ) -> str:
        """An RS256 token like the Bot Framework channel sends with each activity.

        ``expired=True`` makes it expired by 10 minutes (botbuilder allows 5 of
        clock skew).  ``kid`` overrides the header (e.g. to claim a published kid
        while signing with another key).  A claim set to None in
        ``claims_overrides`` is removed.
        """
        now = int(time.time())
        if expired:
            now -= lifetime + 600
        claims: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": now - 5,
            "exp": now + lifetime,
            "iss": issuer or self.issuer,
            "aud": audience or self.app_id,
        }
        for name, value in (claims_overrides or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = key or self.default_key
        headers = {"kid": kid or key.kid, "typ": "JWT", "x5t": key.x5t}
        return jwt.encode(claims, key.private_pem(), algorithm="RS256", headers=headers)

    def auth_header(self, **sign_kwargs) -> str:
        return f"Bearer {self.sign(**sign_kwargs)}"

    # ---- HTTP -------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/.well-known/openidconfiguration", self._channel_metadata, name="openid_metadata"),
            web.get("/v1/.well-known/keys", self._keys, name="keys"),
            web.get(
                "/botframework.com/v2.0/.well-known/openid-configuration",
                self._emulator_metadata,
                name="emulator_metadata",
            ),
        ]

    async def _channel_metadata(self, request: web.Request) -> web.Response:
        await self._take_time()
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.base_url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _emulator_metadata(self, request: web.Request) -> web.Response:
        await self._take_time()
        return web.json_response(
            {
                "issuer": "https://login.microsoftonline.com/d6d49420-f39b-4df7-a1dc-d59a935871db/v2.0",
                "jwks_uri": f"{self.base_url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        await self._take_time()
        with self._lock:
            if self._jwks_cache is None:
                self._jwks_cache = {"keys": [k.jwk() for k in self.published.values()]}
            return web.json_response(self._jwks_cache)
