"""A pager on 127.0.0.1 (free port) for notifier tests: records each request body and
answers as told: `ok` (202), a status code such as 500 or 400, or `hang` (never answers
until stopped, so the client's timeout fires)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal, Self

Answer = int | Literal["hang"]


class PagerServer:
    def __init__(self) -> None:
        self.answer: Answer = 202
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/page"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (its timeout): nothing to answer
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.paths.append(path)
        self.bodies.append(json.loads(body))
        if self.answer == "hang":
            await self._stopping.wait()
            return
        reply = b'{"status":"ok"}'
        writer.write(
            f"HTTP/1.1 {self.answer} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
            + reply
        )
        await writer.drain()
