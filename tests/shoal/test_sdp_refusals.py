"""A refused SDP offer closes the peer socket with a reason about the offer, never aiortc's text.

aiortc fails on some malformed offers with internal errors (``'NoneType' object has no
attribute '_set_mid'``, ``invalid literal for int()``, a bare AssertionError); those used
to reach the client as its close reason. Each case names what aiortc said before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fishjam._proto.media_events.peer import peer_pb2 as CE
from fishjam.events import ServerMessagePeerCrashed
from tests.shoal.test_webrtc_faults import RawPeer
from tests.support.agent_client import create_room
from tests.support.notify import collecting, wait_for
from tests.support.server import ServerProcess

PYTHON_INTERNALS = ("Error", "Exception", "Traceback", "NoneType", "attribute", "int()", "literal", ".py")


@pytest.fixture
async def notifications(server: ServerProcess) -> AsyncIterator[list[object]]:
    async with collecting(server) as received:
        yield received


AUDIO_SECTION = """m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
"""
SESSION = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE 0\n"


@pytest.mark.parametrize(
    ("sdp", "said"),
    [
        # aiortc: 'NoneType' object has no attribute '_set_mid'
        (SESSION + AUDIO_SECTION + AUDIO_SECTION, "m-lines 1 and 2 have the same mid '0'"),
        # aiortc: invalid literal for int() with base 10: 'abc'
        (SESSION + AUDIO_SECTION.replace("opus/48000/2", "opus/abc") + "a=ssrc:abc cname:x\n", "a=ssrc needs a number"),
        # aiortc: AssertionError (no message)
        (SESSION + AUDIO_SECTION.replace("m=audio 9", "m=audio x"), "m-line 1 is not 'm=<media> <port>"),
        # aiortc: ICE username fragment or password is missing
        (SESSION + AUDIO_SECTION.replace("a=ice-ufrag:abcd\n", ""), "an m-line has no a=ice-ufrag or a=ice-pwd"),
    ],
    ids=["duplicate-mid", "non-numeric-ssrc", "bad-m-line", "no-ice-ufrag"],
)
async def test_a_refused_sdp_offer_says_what_is_wrong_with_it_in_plain_words(
    server: ServerProcess, notifications: list[object], sdp: str, said: str
) -> None:
    room = create_room(server)
    bad, bad_id = await RawPeer.join(server, room)
    await bad.media(CE.MediaEvent(sdp_offer=CE.MediaEvent.SdpOffer(sdp=sdp.replace("\n", "\r\n"))))
    code, reason, _ = await bad.closed()
    assert code == 1007 and reason.startswith("invalid SDP offer: ") and said in reason, reason
    assert not any(word in reason for word in PYTHON_INTERNALS), reason
    crashed = await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerCrashed) and n.peer_id == bad_id)
    assert isinstance(crashed, ServerMessagePeerCrashed) and crashed.reason == reason


async def test_metadata_with_a_number_too_long_to_read_is_refused_as_bad_json(
    server: ServerProcess, notifications: list[object]
) -> None:
    """Python refuses integers over 4300 digits with a ValueError that is not a JSONDecodeError."""
    room = create_room(server)
    bad, bad_id = await RawPeer.join(server, room)
    metadata = '{"n": ' + "1" * 5000 + "}"
    await bad.media(CE.MediaEvent(update_endpoint_metadata=CE.MediaEvent.UpdateEndpointMetadata(metadata_json=metadata)))
    code, reason, _ = await bad.closed()
    assert (code, reason) == (1007, "update_endpoint_metadata: metadata is not valid JSON: a number has too many digits")
    await wait_for(notifications, lambda n: isinstance(n, ServerMessagePeerCrashed) and n.peer_id == bad_id)
