"""Webhooks checked with the official SDK's ``verify_webhook_signature`` and decoder.

A WebRTC peer joins, is deleted, and the room is deleted, while an official notifier
listens; the room's webhook points at a local receiver. The captured bodies are then
handed to the official SDK (``official/webhook_decoding.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fishjam._proto.server_notifications_pb2 import ServerMessage
from tests.compat.events import PEER_LIFECYCLE, assert_in_order, for_room
from tests.compat.runner import run_scenario
from tests.compat.webhook_receiver import Delivery, WebhookReceiver, webhook_receiver
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def carries_room_deleted(delivery: Delivery, room_id: str) -> bool:
    message = ServerMessage.FromString(delivery.body)
    if message.WhichOneof("content") == "notification_batch":
        items = list(message.notification_batch.notifications)
    else:
        items = [message]
    return any(m.WhichOneof("content") == "room_deleted" and m.room_deleted.room_id == room_id for m in items)


def lifecycle(server: ServerProcess, receiver: WebhookReceiver, name: str, batch: bool) -> dict[str, Any]:
    notifier = run_scenario(
        "notifier", "peer_lifecycle", server, delete_peer=True, webhook_url=receiver.url(name), batch=batch
    )
    room_id = notifier["room_id"]
    deliveries = receiver.wait_until(name, lambda ds: any(carries_room_deleted(d, room_id) for d in ds), timeout=30)
    request = {
        "secret": server.webhook_secret,
        "bodies": [{"body_hex": d.body.hex(), "signature": d.headers.get("x-fishjam-signature-256", "")} for d in deliveries],
    }
    decoded = run_scenario("webhook_decoding", "decode", server, stdin=json.dumps(request))["bodies"]
    return {"notifier": notifier, "room_id": room_id, "deliveries": deliveries, "decoded": decoded}


@pytest.fixture(scope="module")
def single(server: ServerProcess, receiver: WebhookReceiver) -> dict[str, Any]:
    return lifecycle(server, receiver, "single", batch=False)


@pytest.fixture(scope="module")
def batched(server: ServerProcess, receiver: WebhookReceiver) -> dict[str, Any]:
    return lifecycle(server, receiver, "batched", batch=True)


MODES = ["single", "batched"]


def run_of(mode: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    run: dict[str, Any] = request.getfixturevalue(mode)
    return run


def webhook_events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for body in run["decoded"] for n in body["notifications"]]


@pytest.mark.parametrize("mode", MODES)
def test_every_webhook_is_a_signed_protobuf_post_the_official_sdk_accepts(mode: str, request: pytest.FixtureRequest) -> None:
    run = run_of(mode, request)
    assert run["deliveries"], "no webhook arrived"
    for delivery in run["deliveries"]:
        assert delivery.headers.get("content-type") == "application/x-protobuf"
        assert delivery.headers.get("x-fishjam-signature-256", "").startswith("sha256=")
    for body in run["decoded"]:
        assert body["verified"], body
        assert not body["verified_with_wrong_secret"]
        assert body["notifications"], f"the official decoder found no notification in a {body['kind']} body"


@pytest.mark.parametrize("mode", MODES)
def test_webhooks_deliver_the_peer_lifecycle_in_order(mode: str, request: pytest.FixtureRequest) -> None:
    run = run_of(mode, request)
    events = webhook_events(run)
    assert {e["room_id"] for e in events} == {run["room_id"]}
    assert_in_order(events, [{"type": name} for name in PEER_LIFECYCLE])


@pytest.mark.parametrize("mode", MODES)
def test_webhooks_carry_exactly_what_the_notifier_socket_carried(mode: str, request: pytest.FixtureRequest) -> None:
    run = run_of(mode, request)
    assert webhook_events(run) == for_room(run["notifier"]["events"], run["room_id"])


def test_without_batching_each_webhook_carries_one_notification(single: dict[str, Any]) -> None:
    assert [(b["kind"], len(b["notifications"])) for b in single["decoded"]] == [
        (b["kind"], 1) for b in single["decoded"]
    ]
    assert "notification_batch" not in {b["kind"] for b in single["decoded"]}


def test_with_batching_webhooks_are_notification_batches_that_coalesce(batched: dict[str, Any]) -> None:
    assert {b["kind"] for b in batched["decoded"]} == {"notification_batch"}
    # delete_peer emits PeerDisconnected and PeerDeleted in the same instant: one batch.
    assert max(len(b["notifications"]) for b in batched["decoded"]) > 1
    assert len(batched["decoded"]) < len(webhook_events(batched))
