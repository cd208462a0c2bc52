"""Turning a ``fishjam_id`` into the URLs the SDK talks to."""

from urllib.parse import urlparse

from fishjam.errors import MissingFishjamIdError

_CLOUD_CONNECT_URL = "https://fishjam.io/api/v1/connect/"
_LIVESTREAM_WHIP_PATH = "/api/v1/live/api/whip"
_LIVESTREAM_WHEP_PATH = "/api/v1/live/api/whep"


def _is_full_url(value: str) -> bool:
    parsed = urlparse(value)
    return bool(parsed.scheme and parsed.netloc)


def get_fishjam_url(fishjam_id: str) -> str:
    """Resolve the base URL of the management API.

    A self-hosted server is addressed by passing its full URL (scheme and host) as the
    id; anything else is treated as a Fishjam Cloud id.
    """
    if not fishjam_id:
        raise MissingFishjamIdError()
    if _is_full_url(fishjam_id):
        return fishjam_id
    return _CLOUD_CONNECT_URL + fishjam_id


def http_to_ws(url: str) -> str:
    """Swap an ``http``/``https`` scheme for ``ws``/``wss``; other URLs are left alone.

    Only the scheme is touched, so a host or path that happens to contain "http"
    survives intact.
    """
    if url.startswith("http"):
        return "ws" + url[len("http") :]
    return url


def _same_origin(fishjam_id: str, path: str) -> str:
    parsed = urlparse(get_fishjam_url(fishjam_id))
    return f"{parsed.scheme}://{parsed.netloc}{path}"


def get_livestream_whip_url(fishjam_id: str) -> str:
    """Where a WHIP publisher sends a livestream (same host as the API)."""
    return _same_origin(fishjam_id, _LIVESTREAM_WHIP_PATH)


def get_livestream_whep_url(fishjam_id: str) -> str:
    """Where a WHEP player watches a livestream (same host as the API)."""
    return _same_origin(fishjam_id, _LIVESTREAM_WHEP_PATH)
