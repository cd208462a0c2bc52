"""REST calls in cluster mode: answered by the node that owns the room, whichever node got them.

``ClusterRouting`` sits inside the token check and the body limit, so only authenticated,
bounded requests are forwarded. A forwarded request carries ``x-shoal-hop`` and is always
served locally by its receiver, so a stale directory entry can cost one extra 404, never a
loop.

* ``POST /room``: the room is created on the least-loaded live node (``placement``).
* ``GET /room``: every live node's rooms, merged.
* ``/room/{id}…``: served here when the room is here; otherwise forwarded to its owner;
  unknown rooms get the local 404.
* everything else (``/health``, ``/metrics``, limits): about this node.

A call that needs Redis while it is down answers 503 ``{"errors": …}``; calls for rooms this
node owns need no Redis and keep working.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from shoal.cluster import HOP_HEADER
from shoal.cluster.node import ClusterNode
from shoal.cluster.placement import NodeInfo
from shoal.domain.manager import RoomManager
from shoal.errors import ShoalError

log = logging.getLogger(__name__)

_HOP = HOP_HEADER.encode()
FORWARD_TIMEOUT_S = 10.0
_ROOM_PATH = re.compile(r"^/room/([^/]+)(?:/|$)")
_FORWARDED_HEADERS = {b"authorization", b"content-type", b"accept"}


class ClusterRouting:
    def __init__(self, app: ASGIApp, node: ClusterNode, manager: RoomManager) -> None:
        self._app = app
        self._node = node
        self._manager = manager
        self._http = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == _HOP for name, _ in scope["headers"]):
            await self._app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/room" and method == "POST":
                target = await self._node.place()
                if target.id != self._node.id:
                    await self._forward(target, scope, receive, send)
                    return
            elif path == "/room" and method == "GET":
                await self._list_everywhere(scope, send)
                return
            elif (match := _ROOM_PATH.match(path)) and self._manager.find_room(match[1]) is None:
                owner_id = await self._node.room_owner(match[1])
                if owner_id is not None and owner_id != self._node.id:
                    owner = await self._node.node(owner_id)
                    if owner is not None:
                        await self._forward(owner, scope, receive, send)
                        return
        except ShoalError as exc:
            await _answer(send, 503, {"errors": exc.message})
            return
        await self._app(scope, receive, send)

    async def _forward(self, target: NodeInfo, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        try:
            response = await self._request(target, scope["method"], scope["path"], scope, body)
        except httpx.HTTPError as exc:
            log.warning("cluster: %s %s for node %s failed: %s", scope["method"], scope["path"], target.id, exc)
            await _answer(send, 503, {"errors": f"cluster node {target.id} did not answer ({type(exc).__name__}); retry later"})
            return
        headers = [(b"content-length", str(len(response.content)).encode())]
        if "content-type" in response.headers:
            headers.append((b"content-type", response.headers["content-type"].encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.content})

    async def _list_everywhere(self, scope: Scope, send: Send) -> None:
        rooms: list[Any] = []
        for node in await self._node.live_nodes():
            try:
                response = await self._request(node, "GET", "/room", scope, b"")
            except httpx.HTTPError as exc:
                await _answer(send, 503, {"errors": f"cluster node {node.id} did not answer ({type(exc).__name__}); retry later"})
                return
            if response.status_code != 200:
                await _answer(send, 503, {"errors": f"cluster node {node.id} answered {response.status_code}; retry later"})
                return
            rooms.extend(response.json()["data"])
        await _answer(send, 200, {"data": rooms})

    async def _request(self, target: NodeInfo, method: str, path: str, scope: Scope, body: bytes) -> httpx.Response:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"] if name in _FORWARDED_HEADERS]
        headers.append((HOP_HEADER, self._node.id))
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{target.internal_url}{path}" + (f"?{query}" if query else "")
        return await self._http.request(method, url, headers=headers, content=body)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
