"""The ceiling for bench/ingest.py: a bare aiohttp handler that reads the body and does one
INSERT (one transaction) per request into the same kind of database, nothing else.

    python bench/bare_ingest.py PORT DATABASE_URL
"""
from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import Database  # noqa: E402

metadata = MetaData()
deliveries = Table("bare_deliveries", metadata,
                   Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("delivery_id", String(100)), Column("body", Text))


def main(port: int, url: str) -> None:
    db = Database(url)

    async def ready(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ingest(request: web.Request) -> web.Response:
        body = await request.read()
        async with db.write() as conn:
            await conn.execute(deliveries.insert().values(
                delivery_id=request.headers.get("X-Webhook-Id"), body=body.decode()))
        return web.json_response({"status": "accepted"})

    async def on_start(_app: web.Application) -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    app = web.Application()
    app.add_routes([web.get("/ready", ready), web.post("/ingest", ingest)])
    app.on_startup.append(on_start)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    try:  # the same event loop as Firebell's, so the comparison is fair
        import asyncio
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    main(int(sys.argv[1]), sys.argv[2])
