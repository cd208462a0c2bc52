"""The ``/demo`` and ``/dashboard`` routes; :func:`is_public` says which need no management token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from shoal.server import Shoal
from shoal.web.dashboard import Dashboard
from shoal.web.demo import DIST, DemoSessions, DemoUnavailable

STATIC = Path(__file__).resolve().parent / "static"
_PUBLIC_DASHBOARD = {"/dashboard", "/dashboard/", "/dashboard/dashboard.js"}
_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>shoal demo</title>
<h1>The demo page is not built</h1><p>Start the server with <code>scripts/serve.sh</code>, which builds
<code>web/dist</code> (npm ci and web/build.mjs) and passes <code>--demo</code>.</p>"""


def is_public(path: str) -> bool:
    """The pages (their data asks for the token) and the demo's own API (on only with ``--demo``)."""
    return path == "/demo" or path.startswith("/demo/") or path in _PUBLIC_DASHBOARD


def install(app: FastAPI, shoal: Shoal) -> DemoSessions:
    demos = DemoSessions(shoal)
    dashboard = Dashboard(shoal)
    web = APIRouter(include_in_schema=False)

    @web.get("/demo")
    async def demo_root() -> Response:
        return RedirectResponse("/demo/")

    @web.get("/demo/")
    async def demo_page() -> Response:
        page = DIST / "index.html"
        return FileResponse(page) if page.exists() else HTMLResponse(_NOT_BUILT, status_code=503)

    @web.get("/demo/demo.js")
    async def demo_script() -> Response:
        script = DIST / "demo.js"
        if not script.exists():
            return JSONResponse({"errors": "the demo page is not built (scripts/serve.sh builds it)"}, status_code=404)
        return FileResponse(script, media_type="text/javascript")

    @web.post("/demo/api/session", status_code=201)
    async def demo_session() -> Response:
        if not shoal.config.demo:
            return JSONResponse({"errors": "the demo is off: start the server with --demo (scripts/serve.sh does)"}, 404)
        try:
            session = await demos.start()
        except DemoUnavailable as exc:
            return JSONResponse({"errors": str(exc)}, status_code=503)
        return JSONResponse({"room_id": session.room_id, "peer_id": session.peer_id, "token": session.token}, 201)

    @web.get("/demo/api/session/{room_id}")
    async def demo_state(room_id: str) -> Response:
        session = demos.sessions.get(room_id)
        if session is None:
            return JSONResponse({"errors": f"no demo session in room {room_id}"}, status_code=404)
        return JSONResponse(session.view())

    @web.get("/dashboard")
    async def dashboard_root() -> Response:
        return RedirectResponse("/dashboard/")

    @web.get("/dashboard/")
    async def dashboard_page() -> Response:
        return FileResponse(STATIC / "dashboard.html")

    @web.get("/dashboard/dashboard.js")
    async def dashboard_script() -> Response:
        return FileResponse(STATIC / "dashboard.js", media_type="text/javascript")

    @web.get("/dashboard/api/snapshot")
    async def dashboard_snapshot(local: bool = False) -> Response:
        return JSONResponse(await dashboard.snapshot(local=local))

    @web.get("/dashboard/api/stream")
    async def dashboard_stream() -> Response:
        return StreamingResponse(
            dashboard.stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    app.include_router(web)
    return demos
