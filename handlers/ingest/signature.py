"""PagerDuty webhook signatures: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`.

HMAC-SHA256 over the exact request bytes. During secret rotation PagerDuty sends one signature
per secret, and we may hold several secrets: any signature matching any secret is enough.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Sequence


def sign(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(header: str | None, body: bytes, secrets: Sequence[str]) -> bool:
    if not header or not secrets:
        return False
    offered = [s.strip() for s in header.split(",") if s.strip().startswith("v1=")]
    expected = [sign(secret, body) for secret in secrets]
    matched = False
    for candidate in offered:
        for want in expected:
            # compare_digest on every pair: no early exit that would leak which one matched.
            matched |= hmac.compare_digest(candidate.encode(), want.encode())
    return matched
