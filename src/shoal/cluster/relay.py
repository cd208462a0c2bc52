"""Agent and peer sockets for a room another node owns: relayed to the owner, frame for frame.

The official SDKs connect agents to the ``fishjam_url`` they were given, which may be any
node, so a node that cannot authenticate a socket's token itself looks the token up in the
directory. If another live node issued it, this node opens the same socket on that node,
sends it the first frame as received, and copies frames both ways until either side closes;
the owner's close code and reason reach the client unchanged. The owner authenticates the
token itself, so a token it revoked fails wherever the socket arrived. Relayed sockets carry
``x-shoal-hop`` and are never relayed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from shoal.cluster import HOP_HEADER
from shoal.cluster.node import ClusterNode
from shoal.errors import ShoalError
from shoal.protocol.base import CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_TRY_AGAIN_LATER
from shoal.signaling.session import Frame, close_socket, receive_frame

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
_UNSENDABLE_CODES = {1005, 1006, 1015}
"""Close codes that describe a connection rather than being sent; the client gets 1011."""


def is_relayed(ws: WebSocket) -> bool:
    return HOP_HEADER in ws.headers


async def relay_if_elsewhere(ws: WebSocket, node: ClusterNode, token: str, first: Frame, max_size: int) -> bool:
    """Serve the socket by relaying it if another node owns its token; False when none does."""
    if is_relayed(ws) or not token:
        return False
    try:
        route = await node.token_route(token)
        owner = None if route is None or route.node_id == node.id else await node.node(route.node_id)
    except ShoalError as exc:
        log.warning("cluster: socket %s not routed: %s", ws.url.path, exc.message)
        await close_socket(ws, CLOSE_TRY_AGAIN_LATER, "cluster directory unavailable; retry later")
        return True
    if owner is None:
        return False
    url = owner.internal_url.replace("http", "ws", 1) + ws.url.path
    if ws.url.query:  # the owner sees the options the client asked for (?playout_events=true)
        url += "?" + ws.url.query
    try:
        upstream = await connect(
            url,
            max_size=max_size,
            open_timeout=CONNECT_TIMEOUT_S,
            compression=None,
            additional_headers={HOP_HEADER: node.id},
        )
    except (OSError, TimeoutError, WebSocketException) as exc:
        log.warning("cluster: node %s unreachable for a %s socket: %s", owner.id, ws.url.path, exc)
        await close_socket(ws, CLOSE_TRY_AGAIN_LATER, f"cluster node {owner.id} unreachable; retry later")
        return True
    log.info("cluster: %s socket relayed to node %s", ws.url.path, owner.id)
    await _pipe(ws, upstream, first)
    return True


async def _pipe(ws: WebSocket, upstream: ClientConnection, first: Frame) -> None:
    async def client_to_owner() -> None:
        await upstream.send(first)
        while (frame := await receive_frame(ws)) is not None:
            await upstream.send(frame)

    async def owner_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in upstream:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)

    up = asyncio.ensure_future(client_to_owner())
    down = asyncio.ensure_future(owner_to_client())
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        if upstream.close_code is not None:  # the owner ended it: its code and reason reach the client
            code = upstream.close_code
            reason = upstream.close_reason or ""
            if code in _UNSENDABLE_CODES:
                code, reason = CLOSE_INTERNAL, "cluster node closed the connection"
            await close_socket(ws, code, reason)
        else:
            await close_socket(ws, CLOSE_NORMAL, "")
        await upstream.close()
