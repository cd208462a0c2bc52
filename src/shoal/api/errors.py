"""The single mapping from errors to HTTP responses: ``{"errors": "<message>"}`` bodies."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shoal.errors import ErrorKind, ShoalError
from shoal.logtext import clip

log = logging.getLogger(__name__)

STATUS = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.NOT_IMPLEMENTED: 501,
    ErrorKind.UNAVAILABLE: 503,
}


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": message}, status_code=status)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
    if error.get("type") == "json_invalid":
        return "request body is not valid JSON"
    if error.get("type") == "extra_forbidden":
        return f"unknown field {location!r}"
    return f"{location or 'body'}: {error.get('msg', 'invalid value')}"


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (RFC 9110: a 405 must list them in ``Allow``).

    Starlette's own 405 names only the methods of the first route whose path matched; ``/room``
    has one route for GET and another for POST, so each method is tried against every route.
    Only ``BaseRoute.matches`` is used: FastAPI wraps included routers in private classes.
    """
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(route.matches(dict(request.scope, method=method))[0] == Match.FULL for route in routes)
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ShoalError)
    async def _shoal(_: Request, exc: ShoalError) -> JSONResponse:
        return error_response(STATUS[exc.kind], exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message = "; ".join(_describe(error) for error in exc.errors()[:5])
        return error_response(400, f"invalid request: {message}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, f"no such endpoint: {request.method} {request.url.path}")
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            response = error_response(
                405, f"method {clip(request.method, 16)} not allowed on {clip(request.url.path, 200)}; allowed: {', '.join(allowed)}"
            )
            response.headers["allow"] = ", ".join(allowed)
            return response
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")
