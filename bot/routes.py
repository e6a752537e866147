"""POST /api/messages: Bot Framework activities in. Malformed requests get a 4xx here, before
botbuilder sees them (it would answer them with a 500)."""
from __future__ import annotations

import json

from aiohttp import web
from botbuilder.core import Bot
from botbuilder.integration.aiohttp import CloudAdapter

from storage.db import DatabaseUnavailable

MAX_ACTIVITY = 1024 * 1024


def messages_route(adapter: CloudAdapter, bot: Bot) -> web.RouteDef:
    async def messages(request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return _error(415, "activities must be sent as application/json")
        if (request.content_length or 0) > MAX_ACTIVITY:
            return _error(413, "activity too large")
        body = await request.read()
        if len(body) > MAX_ACTIVITY:
            return _error(413, "activity too large")
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _error(400, "body is not valid JSON")
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return _error(400, "not an activity: a JSON object with a `type` is required")
        try:
            response = await adapter.process(request, bot)
        except DatabaseUnavailable:
            return _error(503, "database unavailable, retry later")
        return response or web.Response(status=201)

    return web.post("/api/messages", messages)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
