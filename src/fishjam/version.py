"""The SDK version, reported to the server in the ``x-fishjam-api-client`` header."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The SDK ships inside the ``shoal`` distribution, so it carries that version.
    __version__ = version("shoal")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"


def get_version() -> str:
    """Return the SDK version string."""
    return __version__
