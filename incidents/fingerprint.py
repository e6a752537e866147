"""Fingerprints: what makes two different incidents "the same problem".

The service plus the title with its volatile parts masked (numbers, ids, hex, timestamps, IPs),
or, for Alertmanager, the alert name plus the group's identifying labels. Two incidents with the
same fingerprint within the duplicate window are one problem reported twice.
"""
from __future__ import annotations

import hashlib
import re
from typing import Mapping

_MASKS = (
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?\b"), "<ts>"),
    (re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "<hex>"),
    # Kubernetes pod suffixes ("7d9f8c6b5-x2kqp").
    (re.compile(r"\b(?=[a-z0-9]*\d)[a-z0-9]{5,}-[a-z0-9]{5}\b"), "<id>"),
    # Long hex-ish tokens with at least one digit: commit shas, pod hashes, request ids.
    (re.compile(r"\b(?=[0-9a-z]*\d)[0-9a-f]{6,}\b"), "<hex>"),
    (re.compile(r"#?\d+([.,]\d+)?%?"), "<n>"),
)


def normalise_title(title: str) -> str:
    text = (title or "").lower()
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return re.sub(r"\s+", " ", text).strip()


def title_fingerprint(service: str | None, title: str) -> str:
    return _digest(f"svc:{service or '-'}|{normalise_title(title)}")


def alert_fingerprint(alertname: str, labels: Mapping[str, str]) -> str:
    ident = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    return _digest(f"am:{alertname}|{ident}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
