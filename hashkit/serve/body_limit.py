"""An ASGI middleware that bounds the size of request bodies (HTTP 413 beyond ``max_bytes``).

A declared ``Content-Length`` above the bound is answered at once, without reading the body; a body sent
without one (chunked) is counted as it arrives and the request is answered with 413 as soon as the count
passes the bound (the application's own response, if it tried to send one, is dropped).
"""

from __future__ import annotations

import json


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Wrap an ASGI ``app``; requests with more than ``max_bytes`` of body get ``413``."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _reject(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = True  # a Content-Length that is not a number: refuse rather than guess
            if too_large:
                await self._reject(send)
                return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            if state["exceeded"]:
                return  # the application's answer to a truncated body is replaced by the 413 below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:  # _TooLarge, possibly re-raised or wrapped by the framework's error handling
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._reject(send)
