"""uvicorn's httptools HTTP/1.1 protocol with the limits it lacks: head size, head deadline, declared body size.

Why a protocol subclass and not middleware: these limits must act before a request
reaches the application, and an ASGI middleware only runs once the headers are complete.
uvicorn's httptools protocol has no limit on the request head at all (httptools grows
each header value by ``bytes +=``: a 200 MB header stalled the event loop for 42 s) and no
deadline on it (a client sending one byte a second holds a connection forever); h11's
``h11_max_incomplete_event_size`` bounds the head but answers a plain-text 400, is
slower, and has no deadline either. So this subclass

* counts the bytes of a request head as they arrive and answers **431** as soon as they
  pass ``max_header_bytes`` — at most one read (256 KiB) is ever buffered beyond it;
* closes a connection whose request head is not complete ``header_timeout_s`` after its
  first byte (or after the connection opened) with **408** — the slowloris defence;
* answers **413** when ``Content-Length`` declares a body over ``max_body_bytes``, before
  the application runs and before any of the body is read (chunked bodies are counted
  by ``body_limit.BodyLimitMiddleware``);
* answers a request the parser cannot read (an unknown method, bytes that are not HTTP)
  with **400** and a JSON body, where uvicorn sends plain text and logs a warning per
  request — a flood of garbage would be a flood of log; here it is one counted cause.

Each answer is ``{"errors": "..."}`` with ``connection: close``; then the connection
*lingers*: the server stops sending (FIN), discards what the client still sends for at
most ``LINGER_S`` and closes. Closing at once would make the kernel answer the unread
request bytes with a reset, which often destroys the 4xx answer before the client reads it.

It relies on uvicorn internals (names checked below at import, and uvicorn is pinned
below 0.56 in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from shoal.refusals import Report

LINGER_S = 2.0
"""How long a refused connection keeps reading (and discarding) before it closes."""

_SEAM = (
    "connection_made", "connection_lost", "data_received", "on_message_begin", "on_url", "on_header",
    "on_headers_complete", "on_body", "on_message_complete", "handle_websocket_upgrade",
    "_unset_keepalive_if_required", "send_400_response",
)
_missing = [name for name in _SEAM if not hasattr(HttpToolsProtocol, name)]
if _missing:  # pragma: no cover - a uvicorn upgrade changed what this module relies on
    raise RuntimeError(f"uvicorn's HttpToolsProtocol lacks {', '.join(_missing)}; shoal's HTTP limits need updating")


PARSER_WARNING = "Invalid HTTP request received."
"""What uvicorn logs for every unparsable request before it calls ``send_400_response``."""


class _DropParserWarnings(logging.Filter):
    """uvicorn's per-request parser warning; ``send_400_response`` reports the cause once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != PARSER_WARNING


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_body_bytes: int
    header_timeout_s: float


class LimitedHttpProtocol(HttpToolsProtocol):
    """One HTTP connection; ``limits`` and ``report`` are set on the subclass ``protocol_class`` makes."""

    limits: HttpLimits
    report: Report

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._refused = False
        self._upgraded = False

    # connection -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # discard until the client closes or the linger time is over
        if self._awaiting_head:
            if self._head_deadline is None:
                self._arm_head_deadline()
            room = self.limits.max_header_bytes - self._head_bytes
            if len(data) > room:
                head, data = data[:room], data[room:]
                self._head_bytes += len(head)
                if head:
                    super().data_received(head)
                if self._upgraded or self._refused or self.transport.is_closing():
                    return  # upgraded (a WebSocket client waits for 101 first), or the parser refused the head
                if self._awaiting_head:
                    self._refuse(
                        431, "http.header_bytes",
                        f"request head larger than {self.limits.max_header_bytes} bytes",
                    )
                    return
            else:
                self._head_bytes += len(data)
        super().data_received(data)

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True
        self._disarm_head_deadline()
        super().handle_websocket_upgrade()

    # parser callbacks -------------------------------------------------------------------
    # After a refusal the parser may still be inside the chunk that caused it: what follows
    # (a body, a pipelined request) is ignored, never handed to the application.

    def on_message_begin(self) -> None:
        if not self._refused:
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_head = False
        self._disarm_head_deadline()
        declared = _content_length(self.headers)
        if declared is not None and declared > self.limits.max_body_bytes:
            self._refuse(413, "http.body_bytes", f"request body larger than {self.limits.max_body_bytes} bytes")
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._awaiting_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """The parser refused the bytes: a JSON 400 like every other refusal, counted, logged once."""
        self._refuse(400, "http.malformed", "malformed HTTP request")

    # limits -----------------------------------------------------------------------------

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self._awaiting_head and not self.transport.is_closing():
            timeout = self.limits.header_timeout_s
            self._refuse(408, "http.header_timeout", f"request headers not complete within {timeout:g} s")

    def _refuse(self, status: int, cause: str, message: str) -> None:
        if self._refused:
            return  # one answer per connection: the first refusal already wrote and shut down sending
        client = self.client[0] if self.client else "unknown client"
        self.report(cause, f"HTTP {status} to {client}: {message}")
        self._refused = True
        self._disarm_head_deadline()
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request is still being answered: no room for ours
            return
        body = json.dumps({"errors": message}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._linger = self.loop.call_later(LINGER_S, self.transport.close)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def protocol_class(limits: HttpLimits, report: Report) -> type[LimitedHttpProtocol]:
    """The protocol class to hand ``uvicorn.run(http=...)``: uvicorn builds one per connection."""
    logging.getLogger("uvicorn.error").addFilter(_DropParserWarnings())
    return type("ShoalHttpProtocol", (LimitedHttpProtocol,), {"limits": limits, "report": staticmethod(report)})
