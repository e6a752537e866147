"""An event loop in its own thread, for the stand-ins of this package (HTTP servers, the TCP proxy).

Why a thread: botbuilder, MSAL and the jira library make blocking calls, some of them from inside
the event loop (botbuilder fetches JWT metadata and app tokens with ``requests``). A server served
by the test's own loop can never answer those calls; one on its own loop answers whatever the
test's loop is doing.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    async def start(self) -> None:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(ready,), name=self.name,
                                        daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this thread's loop (objects made there belong to it) and wait for it
        from the caller's loop."""
        assert self.loop is not None, "start() first"
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        if self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ready.set_result(None)
        loop.run_forever()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # Connections closed last need one more turn to finish closing, else their sockets leak.
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
