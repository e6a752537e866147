"""The ceiling for bench/ingest.py: a bare aiohttp handler that reads the body and does one
INSERT + COMMIT per request with the database's own driver, nothing else: the standard
library's `sqlite3` (WAL, synchronous=NORMAL, on the event loop's thread) for SQLite, asyncpg
(a pool of 10, as Firebell's) for PostgreSQL. No SQLAlchemy, no ORM, no batching: what the
machine can store one delivery at a time.

    python bench/bare_ingest.py PORT DATABASE_URL
"""
from __future__ import annotations

import sqlite3
import sys

from aiohttp import web

CREATE = ("CREATE TABLE IF NOT EXISTS bare_deliveries (id {pk}, delivery_id VARCHAR(100), "
          "body TEXT)")


def sqlite_store(path: str):
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(CREATE.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT"))

    async def store(delivery_id: str | None, body: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bare_deliveries (delivery_id, body) VALUES (?, ?)",
                     (delivery_id, body))
        conn.execute("COMMIT")
    return store, None


def postgres_store(url: str):
    import asyncpg
    pool: dict = {}

    async def on_start(_app: web.Application) -> None:
        pool["p"] = await asyncpg.create_pool(url, min_size=10, max_size=10)
        await pool["p"].execute(CREATE.format(pk="SERIAL PRIMARY KEY"))

    async def store(delivery_id: str | None, body: str) -> None:
        async with pool["p"].acquire() as conn:  # one statement: its own transaction
            await conn.execute("INSERT INTO bare_deliveries (delivery_id, body) VALUES ($1, $2)",
                               delivery_id, body)
    return store, on_start


def main(port: int, url: str) -> None:
    if url.startswith("sqlite"):
        store, on_start = sqlite_store(url.split(":///", 1)[1])
    else:
        store, on_start = postgres_store(url.replace("postgresql+asyncpg://", "postgresql://"))

    async def ready(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ingest(request: web.Request) -> web.Response:
        body = await request.read()
        await store(request.headers.get("X-Webhook-Id"), body.decode())
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.add_routes([web.get("/ready", ready), web.post("/ingest", ingest)])
    if on_start:
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
