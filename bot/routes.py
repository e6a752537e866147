"""POST /api/messages: Bot Framework activities in.

The body is read whole (handlers/ingest/body.py), parsed once, depth-limited, its NUL
characters replaced, and checked against the shape botbuilder and Firebell rely on
(bot/activity_shape.py); anything malformed gets a 4xx here. Then the activity goes to the
adapter as CloudAdapter.process would hand it over (that method would read and deserialise the
body again, and answer a RecursionError or a wrong type with a 500): process_activity still
authenticates every request (the JWT, when MicrosoftAppId is set) before the turn runs.
"""
from __future__ import annotations

from aiohttp import web
from botbuilder.core import Bot, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter

from bot.activity_shape import activity_from
from handlers.ingest.body import door, parse_json
from handlers.ingest.delivery import Rejected
from storage.db import DatabaseUnavailable

MAX_ACTIVITY = 1024 * 1024


def messages_route(adapter: CloudAdapter, bot: Bot) -> web.RouteDef:
    async def messages(request: web.Request, body: bytes) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return _error(415, "activities must be sent as application/json")
        try:
            activity = activity_from(parse_json(body))
        except Rejected as exc:
            return _error(exc.status, exc.reason)
        try:
            invoke_response = await adapter.process_activity(
                request.headers.get("Authorization", ""), activity, bot.on_turn)
        except PermissionError:
            return _error(401, "unauthorized: a valid Bot Framework token is required")
        except DatabaseUnavailable:
            return _error(503, "database unavailable, retry later")
        if invoke_response:
            body = invoke_response.body  # a botbuilder model, or plain JSON (search answers)
            return web.json_response(data=body if isinstance(body, dict)
                                     else serializer_helper(body),
                                     status=invoke_response.status)
        return web.Response(status=201)

    return door("/api/messages", MAX_ACTIVITY, messages)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
