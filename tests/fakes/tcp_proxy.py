"""A small TCP proxy for fault tests: put it between Firebell and PostgreSQL, then ``drop()`` to
make the database unreachable (every open connection is reset, new ones are refused) and
``restore()`` to let it be reached again on the same port.

Usage::

    async with TcpProxy("127.0.0.1", 5432) as proxy:    # listens on 127.0.0.1:<proxy.port>
        url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
        ...                                            # Firebell talks to PostgreSQL through it
        await proxy.hold()                             # bytes stop flowing (a stall)
        await proxy.drop()                             # database "down"
        await proxy.restore()                          # database back

Like the HTTP stand-ins, it runs in its own thread and event loop (``LoopThread``), so it keeps
forwarding even while the test's loop is busy.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from tests.fakes.loop_thread import LoopThread


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port: Optional[int] = None
        self.accepted = 0          # connections accepted while up
        self.resets = 0            # connections cut by drop()
        self.is_up = False
        self._server: Optional[asyncio.base_events.Server] = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._flowing: Optional[asyncio.Event] = None
        self._thread = LoopThread("TcpProxy")

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> "TcpProxy":
        await self._thread.start()
        await self._thread.run(self._listen())
        return self

    async def stop(self) -> None:
        if not self._thread.running:
            return
        await self._thread.run(self._drop())
        await self._thread.stop()

    async def __aenter__(self) -> "TcpProxy":
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # -- faults ---------------------------------------------------------------------------------

    async def hold(self) -> None:
        """Stop forwarding bytes, both ways, on every connection (what is sent waits): a query
        in flight now is still in flight when drop() cuts it."""
        await self._thread.run(self._set_flowing(False))

    async def drop(self) -> None:
        """Stop listening (connects are refused) and reset every open connection."""
        await self._thread.run(self._drop())

    async def restore(self) -> None:
        """Listen again on the same port, forwarding."""
        await self._thread.run(self._listen())
        await self._thread.run(self._set_flowing(True))

    # -- inside the proxy's loop ----------------------------------------------------------------

    async def _set_flowing(self, flowing: bool) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
        self._flowing.set() if flowing else self._flowing.clear()

    async def _listen(self) -> None:
        if self._flowing is None:
            await self._set_flowing(True)
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port or 0,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.is_up = True

    async def _drop(self) -> None:
        self.is_up = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._pipes):
            self.resets += 1
            writer.transport.abort()  # RST, as a dead network path or a restarted server gives
        self._pipes.clear()
        if server is not None:
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if not self.is_up:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self.accepted += 1
        self._pipes.update((client_w, server_w))
        await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w),
                             return_exceptions=True)
        for writer in (client_w, server_w):
            self._pipes.discard(writer)
            writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            if not writer.transport.is_closing():
                writer.transport.abort()
