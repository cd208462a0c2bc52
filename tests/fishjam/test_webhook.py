"""Webhook helpers: signature check and notification decoding."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fishjam import StaleSdkError, decode_server_notifications, receive_binary, verify_webhook_signature
from fishjam._proto import server_notifications_pb2
from fishjam.events import (
    ServerMessagePeerAdded,
    ServerMessagePeerType,
    ServerMessageRecordingStatusChanged,
    ServerMessageRecordingStatusChangedStatus,
    ServerMessageRoomCreated,
    ServerMessageRoomDeleted,
)

ServerMessage = server_notifications_pb2.ServerMessage

BODY = b"\x52\x04\x0a\x02r1"
SECRET = "whsec-test"


def _signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_with_and_without_prefix() -> None:
    digest = _signature(BODY)
    assert verify_webhook_signature(BODY, f"sha256={digest}", SECRET)
    assert verify_webhook_signature(BODY, digest, SECRET)
    assert verify_webhook_signature(BODY, f"  sha256={digest}\n", SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        f"sha256={_signature(BODY).upper()}",
        f"sha256={_signature(BODY, 'other')}",
        f"sha256={_signature(BODY + b'x')}",
        "sha256=",
        "",
        "sha256=ünïcode",
    ],
)
def test_bad_signatures_are_rejected(signature: str) -> None:
    assert not verify_webhook_signature(BODY, signature, SECRET)


def test_single_notification() -> None:
    assert decode_server_notifications(BODY) == [ServerMessageRoomCreated(room_id="r1")]


def test_batch_is_unwrapped_in_order_skipping_unsupported_members() -> None:
    # The byte example from notifications.md §4: room_created + room_deleted for "r1".
    spec_example = bytes.fromhex("8a02100a0652040a0272310a065a040a027231")
    assert decode_server_notifications(spec_example) == [
        ServerMessageRoomCreated(room_id="r1"),
        ServerMessageRoomDeleted(room_id="r1"),
    ]
    batch = ServerMessage(
        notification_batch=ServerMessage.NotificationBatch(
            notifications=[
                ServerMessage(room_created=ServerMessage.RoomCreated(room_id="a")),
                ServerMessage(authenticated=ServerMessage.Authenticated()),
                ServerMessage(
                    peer_added=ServerMessage.PeerAdded(
                        room_id="a", peer_id="p", peer_type=ServerMessage.PEER_TYPE_AGENT
                    )
                ),
            ]
        )
    )
    decoded = decode_server_notifications(batch.SerializeToString())
    assert decoded == [
        ServerMessageRoomCreated(room_id="a"),
        ServerMessagePeerAdded(room_id="a", peer_id="p", peer_type=ServerMessagePeerType.PEER_TYPE_AGENT),
    ]
    assert isinstance(decoded[1], ServerMessagePeerAdded)
    assert decoded[1].peer_type == ServerMessagePeerType.PEER_TYPE_AGENT


def test_unsupported_payloads_give_nothing() -> None:
    assert decode_server_notifications(b"") == []
    assert decode_server_notifications(ServerMessage(authenticated={}).SerializeToString()) == []


def test_receive_binary_is_deprecated_but_works() -> None:
    with pytest.deprecated_call():
        assert receive_binary(BODY) == ServerMessageRoomCreated(room_id="r1")
    with pytest.deprecated_call():
        assert receive_binary(b"") is None
    batch = ServerMessage(notification_batch=ServerMessage.NotificationBatch(notifications=[]))
    with pytest.deprecated_call():
        assert receive_binary(batch.SerializeToString()) == []


@pytest.mark.parametrize("status", [0, 99])
def test_unknown_recording_status_means_stale_sdk(status: int) -> None:
    message = ServerMessage(recording_status_changed={"recording_id": "x", "status": status})
    with pytest.raises(StaleSdkError):
        decode_server_notifications(message.SerializeToString())


def test_known_recording_status_passes() -> None:
    message = ServerMessage(recording_status_changed={"recording_id": "x", "status": 3})
    [decoded] = decode_server_notifications(message.SerializeToString())
    assert isinstance(decoded, ServerMessageRecordingStatusChanged)
    assert decoded.status == ServerMessageRecordingStatusChangedStatus.STATUS_AVAILABLE
