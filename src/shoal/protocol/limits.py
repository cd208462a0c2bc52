"""Limits of client-supplied metadata, checked at the protocol edge, without I/O.

Metadata is stored, listed over REST and published to every participant and notifier, so
one participant's metadata is everyone's problem: nested 255 levels it once broke
``GET /room`` for all (pydantic's serializer gives up there), nested ~990 levels it broke
the decoder. Every entry point — REST peer ``metadata``, an agent's ``AddTrack``, a
participant's ``connect``, ``update_endpoint_metadata``, ``update_track_metadata`` and the
track metadata of ``sdp_offer`` — checks the same three limits before anything is stored:

* nesting depth (objects and arrays; the outermost container is level 1),
* the length of every string, keys included,
* the total size, in bytes of UTF-8 JSON (as sent on a socket; compact for REST bodies).

NaN and Infinity are refused too: they are not JSON, and browsers fail to parse them.
The checks never recurse in Python and cost time linear in the (already bounded) size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_STRING = 16 * 1024
DEFAULT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class MetadataLimits:
    max_depth: int = DEFAULT_MAX_DEPTH
    """Deepest nesting of objects/arrays accepted."""
    max_string: int = DEFAULT_MAX_STRING
    """Longest string (value or key), in characters."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Largest metadata, in bytes of UTF-8 JSON."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= 200:
            raise ValueError("metadata depth limit must be within 1..200 (pydantic cannot serialize 255)")
        if self.max_string < 1 or self.max_bytes < 2:
            raise ValueError("metadata string and size limits must be positive")


MetadataCause = Literal["depth", "string", "bytes", "not_json"]


@dataclass(frozen=True)
class MetadataRefusal:
    """Why metadata was refused: ``cause`` names the limit (for counters), ``reason`` is for the client."""

    cause: MetadataCause
    reason: str


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf, which no JSON encoder may write back
        raise _NotFinite(text)
    return value


def check_metadata(value: Any, limits: MetadataLimits) -> MetadataRefusal | None:
    """Why the decoded metadata ``value`` breaks a limit, or None if it is within all of them."""
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        return _too_deep(limits)
    except ValueError:
        return _NOT_FINITE
    except TypeError:
        return MetadataRefusal("not_json", "metadata is not a JSON value")
    if len(encoded) > limits.max_bytes or len(encoded.encode()) > limits.max_bytes:
        return _too_big(limits)
    return _check_tree(value, limits)


def check_metadata_text(
    text: str, limits: MetadataLimits, *, invalid_json_is_text: bool = False
) -> MetadataRefusal | None:
    """Why the metadata JSON ``text`` breaks a limit (or is not JSON), or None.

    ``""`` means "no metadata" and passes. With ``invalid_json_is_text`` (agents' track
    metadata, which the server keeps as a plain string when it is not JSON) text that does
    not parse is checked as one string.
    """
    if len(text) > limits.max_bytes or len(text.encode()) > limits.max_bytes:
        return _too_big(limits)
    if not text:
        return None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:  # the decoder itself gives up around 1000 levels
        return _too_deep(limits)
    except _NotFinite:
        return _NOT_FINITE
    except ValueError as exc:  # JSONDecodeError, and integers of more than 4300 digits
        if not invalid_json_is_text:
            return MetadataRefusal("not_json", f"metadata is not valid JSON: {_why_not_json(exc)}"[:100])
        value = text
    return _check_tree(value, limits)


def loads_json(text: str) -> Any:
    """Parse JSON text; anything that is not plain JSON raises ``json.JSONDecodeError``.

    ``json.loads`` alone also raises ``RecursionError`` (nesting near 1000), a bare
    ``ValueError`` (integers over 4300 digits) and accepts NaN/Infinity; callers that
    turn a decode error into a protocol refusal get one exception type for all of them.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        raise json.JSONDecodeError(_why_not_json(exc), text, 0) from exc


def _why_not_json(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, _NotFinite):
        return "NaN and Infinity are not allowed"
    return "a number has too many digits"


def _check_tree(value: Any, limits: MetadataLimits) -> MetadataRefusal | None:
    """Depth and string lengths, walked with an explicit stack (never Python recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_string:
                return _too_long(limits)
        elif isinstance(item, dict):
            if depth + 1 > limits.max_depth:
                return _too_deep(limits)
            for key, child in item.items():
                if isinstance(key, str) and len(key) > limits.max_string:
                    return _too_long(limits)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth + 1 > limits.max_depth:
                return _too_deep(limits)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return _NOT_FINITE
    return None


_NOT_FINITE = MetadataRefusal("not_json", "metadata is not valid JSON: NaN and Infinity are not allowed")


def _too_deep(limits: MetadataLimits) -> MetadataRefusal:
    return MetadataRefusal("depth", f"metadata nested deeper than {limits.max_depth} levels")


def _too_long(limits: MetadataLimits) -> MetadataRefusal:
    return MetadataRefusal("string", f"metadata has a string longer than {limits.max_string} characters")


def _too_big(limits: MetadataLimits) -> MetadataRefusal:
    return MetadataRefusal("bytes", f"metadata larger than {limits.max_bytes} bytes")
