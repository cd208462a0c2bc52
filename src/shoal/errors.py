"""The one error hierarchy of the server.

Every domain error carries a kind; exactly one function at each edge maps the kind to
what the client sees (an HTTP status in ``api.errors``, a close reason on a socket)::

    ShoalError
    ├── InvalidRequest     (kind INVALID)         → 400
    ├── Unauthorized       (kind UNAUTHORIZED)    → 401
    ├── NotFound           (kind NOT_FOUND)       → 404
    ├── Conflict           (kind CONFLICT)        → 409
    ├── Unavailable        (kind UNAVAILABLE)     → 503
    └── NotImplementedYet  (kind NOT_IMPLEMENTED) → 501
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    NOT_IMPLEMENTED = "not_implemented"
    UNAVAILABLE = "unavailable"


class ShoalError(Exception):
    """Base class: a message meant for the client, and a kind that picks the status."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ShoalError):
    kind = ErrorKind.INVALID


class Unauthorized(ShoalError):
    kind = ErrorKind.UNAUTHORIZED


class NotFound(ShoalError):
    kind = ErrorKind.NOT_FOUND


class Conflict(ShoalError):
    kind = ErrorKind.CONFLICT


class Unavailable(ShoalError):
    """The server is at a capacity limit (for example ``--max-rooms``); retrying later may work."""

    kind = ErrorKind.UNAVAILABLE


class NotImplementedYet(ShoalError):
    kind = ErrorKind.NOT_IMPLEMENTED
