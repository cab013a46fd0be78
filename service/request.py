"""The request class: JSON bodies that msgspec cannot read at all are the client's error (400), never a 500; and
work that stops when the client goes away.

Litestar turns msgspec's `DecodeError` into 400 but lets two other failures of the same decoder through as 500s:
bytes that are not UTF-8 inside a JSON string (`UnicodeDecodeError`) and nesting deeper than the decoder's
recursion limit (`RecursionError`). Both are raised while reading the body, before any handler runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request

from service.errors import BadRequest, ClientGone

T = TypeVar("T")


class ServiceRequest(Request):
    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise BadRequest("the request body is not valid UTF-8") from None
        except RecursionError:
            raise BadRequest("the request body's JSON is nested too deeply") from None

    async def unless_disconnected(self, work: Awaitable[T]) -> T:
        """`work`'s result; if the client disconnects first, `work` is cancelled (a queued job leaves the queue
        unstarted) and ClientGone is raised. The body has been read, so the next ASGI message is the disconnect."""
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(self._disconnected())
        try:
            await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this request's own task was cancelled (server shutdown)
            task.cancel()
            raise
        finally:
            watch.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ClientGone()
        return task.result()

    async def _disconnected(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
