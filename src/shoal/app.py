"""The ASGI application: REST routes, the three WebSocket endpoints, auth and path hygiene."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response, WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send

from shoal import __version__
from shoal.api import errors as api_errors
from shoal.api.access_log import AccessLog
from shoal.api.body_limit import BodyLimitMiddleware
from shoal.api.rest import router
from shoal.api.ws_direct import RAW_SEND
from shoal.auth import bearer_token, check_management_token
from shoal.cluster.forward import ClusterRouting
from shoal.config import ShoalConfig
from shoal.metrics import CONTENT_TYPE_LATEST
from shoal.server import Shoal
from shoal.signaling.ws_agent import serve_agent
from shoal.signaling.ws_notifier import serve_notifier
from shoal.signaling.ws_peer import serve_peer
from shoal.web import routes as web_routes

PUBLIC_PATHS = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
METRICS_PATH = "/metrics"
"""Needs the management token unless ``--metrics-public``: figures reveal traffic and room counts."""
_SLASHES = re.compile(r"/{2,}")


class EdgeMiddleware:
    """Collapses duplicate slashes and checks the management token on REST calls.

    The JS SDK joins ``http://host/`` and ``/room`` into ``//room``; collapsing keeps such
    URLs working. The token is checked before anything else, so a bad token gets 401
    even with a malformed body (``/validate`` answers 404, as Fishjam does).
    """

    def __init__(self, app: ASGIApp, token: str, metrics_public: bool = False) -> None:
        self._app = app
        self._token = token
        self._public = PUBLIC_PATHS | {METRICS_PATH} if metrics_public else PUBLIC_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope["path"]:
            scope = dict(scope, path=_SLASHES.sub("/", scope["path"]))
        if scope["type"] == "websocket":
            scope = dict(scope, **{RAW_SEND: send})  # the server's own send, for direct writes
        if scope["type"] == "http" and scope["path"] not in self._public and not web_routes.is_public(scope["path"]):
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            presented = bearer_token(header)
            if not check_management_token(self._token, presented):
                if scope["path"] == "/validate":
                    await _respond(send, 404, b"")
                else:
                    message = "Invalid token" if presented else "Missing token"
                    await _respond(send, 401, json.dumps({"errors": message}).encode())
                return
        await self._app(scope, receive, send)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(config: ShoalConfig) -> FastAPI:
    shoal = Shoal(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await shoal.start()
        yield
        await demos.close()
        await shoal.close()

    app = FastAPI(
        title="shoal",
        version=__version__,
        description="Self-hosted, Fishjam-compatible media server for AI agents: the management API.",
        lifespan=lifespan,
    )
    app.state.shoal = shoal
    api_errors.install(app)
    app.include_router(router)
    demos = web_routes.install(app, shoal)

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics() -> Response:
        # On the event loop, not in a worker thread: the collector reads live rooms and queues.
        return Response(shoal.metrics.exposition(), headers={"content-type": CONTENT_TYPE_LATEST})

    @app.websocket("/socket/agent/websocket")
    async def agent_socket(ws: WebSocket) -> None:
        await serve_agent(ws, shoal)

    @app.websocket("/socket/peer/websocket")
    async def peer_socket(ws: WebSocket) -> None:
        await serve_peer(ws, shoal)

    @app.websocket("/socket/server/websocket")
    async def notifier_socket(ws: WebSocket) -> None:
        await serve_notifier(ws, shoal)

    if shoal.cluster is not None:
        # Innermost: only authenticated, size-checked requests are forwarded to another node.
        app.add_middleware(ClusterRouting, node=shoal.cluster, manager=shoal.manager)
    # Added before EdgeMiddleware, so it runs inside it: bodies are read only for a valid token.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=config.http_max_body_bytes,
        timeout_s=config.http_body_timeout_s,
        report=shoal.refusals.note,
    )
    app.add_middleware(EdgeMiddleware, token=config.management_token, metrics_public=config.metrics_public)
    if config.access_log:
        app.add_middleware(AccessLog)  # outermost: refused requests (401, 413) are logged too
    return app
