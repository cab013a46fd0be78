"""The request class: JSON bodies that msgspec cannot read at all are the client's error (400), never a 500.

Litestar turns msgspec's `DecodeError` into 400 but lets two other failures of the same decoder through as 500s:
bytes that are not UTF-8 inside a JSON string (`UnicodeDecodeError`) and nesting deeper than the decoder's
recursion limit (`RecursionError`). Both are raised while reading the body, before any handler runs.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from service.errors import BadRequest


class ServiceRequest(Request):
    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError as e:
            raise BadRequest(f"the request body is not valid UTF-8 (byte {e.start})") from None
        except RecursionError:
            raise BadRequest("the request body's JSON is nested too deeply") from None
