"""Exceptions raised by the SDK.

Every failed management call raises a subclass of :class:`HTTPError`, chosen by status
code, so callers can catch either a specific failure or all of them at once.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import httpx


class MissingFishjamIdError(ValueError):
    """Raised when a client is created without a Fishjam id or URL."""

    def __init__(self) -> None:
        super().__init__("Fishjam ID is required")


class StaleSdkError(Exception):
    """Raised for a notification value this SDK does not know; upgrading usually fixes it."""

    def __init__(self, status: int) -> None:
        self.status = int(status)
        super().__init__(
            f"Received a recording status this SDK cannot parse ({self.status});"
            " the SDK is probably older than the server, please update it."
        )


class HTTPError(Exception):
    """A management API call failed; ``str(error)`` is the server's explanation."""

    def __init__(self, errors: str) -> None:
        super().__init__(errors)

    @staticmethod
    def from_response(response: httpx.Response) -> HTTPError:
        """Build the exception that matches a failed response."""
        return error_for_status(response.status_code, error_message(response))


class BadRequestError(HTTPError):
    """400 or 422: the request was malformed or invalid."""


class UnauthorizedError(HTTPError):
    """401: the management token was rejected."""


class QuotaExceededError(HTTPError):
    """402: an account limit was reached."""


class NotFoundError(HTTPError):
    """404: the room, peer or other resource does not exist."""


class ConflictError(HTTPError):
    """409: the request clashes with the current state (e.g. the room is full)."""


class ServiceUnavailableError(HTTPError):
    """503: the server cannot handle the request right now."""


class InternalServerError(HTTPError):
    """Any other failure status."""


class InvalidFishjamCredentialsError(HTTPError):
    """The Fishjam id or management token did not pass ``/validate``."""


def error_message(response: httpx.Response) -> str:
    """The ``errors`` string of a JSON error body, falling back to the raw body text."""
    raw = response.content.decode(errors="replace")
    if not raw and response.is_redirect:
        return f"unexpected redirect to {response.headers.get('location', '?')}"
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(body, dict) and isinstance(body.get("errors"), str):
        return str(body["errors"])
    return raw


def error_for_status(status_code: int, errors: str) -> HTTPError:
    """Map a failure status to its exception class."""
    match status_code:
        case HTTPStatus.BAD_REQUEST | HTTPStatus.UNPROCESSABLE_ENTITY:
            return BadRequestError(errors)
        case HTTPStatus.UNAUTHORIZED:
            return UnauthorizedError(errors)
        case HTTPStatus.PAYMENT_REQUIRED:
            return QuotaExceededError(errors)
        case HTTPStatus.NOT_FOUND:
            return NotFoundError(errors)
        case HTTPStatus.CONFLICT:
            return ConflictError(errors)
        case HTTPStatus.SERVICE_UNAVAILABLE:
            return ServiceUnavailableError(errors)
        case _:
            return InternalServerError(errors)
