"""``shoal serve`` refuses to start when an aiortc/aioice internal shoal relies on is gone.

Each case removes one internal in a fresh interpreter, the way a changed aiortc or aioice
would, then runs the real command line: it must exit 2 with one line naming the internal and
the installed versions, not start and break a call later.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

START = """
import sys
{remove}
from shoal.cli import main
raise SystemExit(main(["serve", "--host", "127.0.0.1", "--port", "0", "--management-token", "t",
                       "--rtc-interface", "127.0.0.1"]))
"""


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        # forwarding
        ("from aiortc import RTCDtlsTransport; del RTCDtlsTransport._send_rtp", "RTCDtlsTransport._send_rtp()"),
        # negotiating the room's codec (the offer is narrowed with aiortc's own codec matching)
        ("import aiortc.rtcpeerconnection as m; del m.find_common_codecs", "find_common_codecs()"),
        # the shared UDP port and NAT rebinding
        ("import aioice; del aioice.Connection._valid_username", "aioice.Connection._valid_username(username)"),
        # shoal.testing's RTP instruments go through the same seam
        ("from aiortc import RTCRtpReceiver; del RTCRtpReceiver._handle_rtp_packet",
         "RTCRtpReceiver._handle_rtp_packet()"),
    ],
)
def test_a_missing_internal_stops_shoal_serve_naming_it_and_the_installed_versions(remove: str, named: str) -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", START.format(remove=remove)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"shoal serve started without {named}: {exc.stderr!r:.300}")
    assert result.returncode == 2, result.stderr
    assert named in result.stderr, result.stderr
    assert f"aiortc {version('aiortc')} / aioice {version('aioice')}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
