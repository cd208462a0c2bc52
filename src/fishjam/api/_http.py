"""The single HTTP transport every management call goes through.

It owns the base URL, the bearer token and the SDK identification header, turns every
failure status into an :class:`~fishjam.errors.HTTPError` and reports the server's
deprecation notices once per client.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping
from types import FrameType
from typing import Any

import httpx

from fishjam.errors import HTTPError
from fishjam.version import get_version

CLIENT_HEADER = "x-fishjam-api-client"
DEPRECATION_HEADER = "x-fishjam-api-deprecated"


def encode_json(payload: Any) -> bytes:
    """Serialise a body exactly the way httpx 0.28 does for ``json=``.

    Doing it here keeps the bytes stable whatever httpx version is installed.
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


class HttpTransport:
    """A thin synchronous wrapper around :class:`httpx.Client`."""

    def __init__(
        self,
        base_url: str,
        management_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        # Header order matches the official SDK: identification first, then auth.
        headers = {
            CLIENT_HEADER: f"python-server/{get_version()}",
            "Authorization": f"Bearer {management_token}",
        }
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,  # None: wait as long as the server takes, like the official client
            follow_redirects=False,
            transport=transport,
        )
        self._deprecation_seen = False

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
    ) -> httpx.Response:
        """Send one request and raise the matching error for any non-2xx status.

        ``json_body=None`` sends no body and no Content-Type, like the official client
        does for body-less POSTs.
        """
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["content"] = encode_json(json_body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        if params is not None:
            kwargs["params"] = dict(params)
        response = self._client.request(method, path, **kwargs)
        self.note_deprecation(response.headers)
        # Redirects are never followed, so a 3xx is as much a failure as a 4xx/5xx.
        if raise_for_status and not response.is_success:
            raise HTTPError.from_response(response)
        return response

    def note_deprecation(self, headers: httpx.Headers) -> None:
        """Warn once per client when the server flags this SDK as deprecated or unsupported."""
        raw = headers.get(DEPRECATION_HEADER)
        if not raw or self._deprecation_seen:
            return
        self._deprecation_seen = True
        try:
            notice = json.loads(raw)
        except ValueError:
            return
        if not isinstance(notice, dict):
            return
        status, message = notice.get("status"), notice.get("message")
        if not status or not message:
            return
        if status == "unsupported":
            warnings.warn(str(message), UserWarning, stacklevel=_caller_stacklevel())
        elif status == "deprecated":
            warnings.warn(str(message), DeprecationWarning, stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first frame outside the SDK."""
    level = 1
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _in_sdk(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    return level


def _in_sdk(module: str) -> bool:
    return module == "fishjam" or module.startswith("fishjam.")
