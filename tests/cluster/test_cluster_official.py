"""The official fishjam-server-sdk, unmodified, against three shoal nodes.

Rooms and peers are created through node 0, the official agent connects to node 1
(``fishjam_url`` of a node that does not hold the room), a WebRTC participant joins at the
``peer_websocket_url`` the owner named, and a notifier on node 2 follows the room.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import numpy as np

from fishjam.events import ServerMessagePeerConnected, ServerMessageTrackAdded
from shoal.testing import ToneSource, WebRTCPeer
from tests.cluster.conftest import Cluster
from tests.compat.runner import run_scenario
from tests.support.audio import tone
from tests.support.notify import collecting, wait_for
from tests.support.peers import heard, spectrum_of

HEAR_S = 2.0


async def test_official_sdk_agent_on_a_non_owner_node_hears_and_is_heard(
    cluster: Cluster, peers: list[WebRTCPeer], tmp_path: Path
) -> None:
    speak = tmp_path / "speak.pcm"
    speak.write_bytes(tone(880, 3.0, 16000))
    async with collecting(cluster.nodes[2]) as notes:
        made = run_scenario("cluster", "setup", cluster.nodes[0])
        room_id = made["room_id"]
        owner = cluster.owner(room_id)
        agent_node = 1 if owner != 1 else 2
        assert made["agent_socket_base"] == cluster.nodes[owner].ws_url

        alice = await WebRTCPeer.join(cluster.nodes[owner].ws_url, made["peer_token"], metadata={"name": "alice"})
        peers.append(alice)
        alice_track = await alice.publish_audio(ToneSource(440))
        scenario = asyncio.create_task(
            asyncio.to_thread(
                run_scenario, "cluster", "agent", cluster.nodes[0], timeout=60,
                agent_id=made["agent_id"], room_id=room_id, agent_token=made["agent_token"],
                agent_url=cluster.nodes[agent_node].url, speak=str(speak), hear_s=HEAR_S, hold_s=4.0,
            )
        )
        remote = await alice.wait_for_remote_track(endpoint_id=made["agent_id"], timeout=30)
        freq, level = await heard(remote)
        assert abs(freq - 880) < 10 and level > 1000, f"the participant heard {freq:.0f} Hz at {level:.0f}"
        result = await scenario
        await wait_for(notes, lambda n: isinstance(n, ServerMessageTrackAdded) and n.track.id == result["track_id"])

    assert f"relayed to node node-{owner}" in cluster.nodes[agent_node].log_text()
    assert result["tracks"] == [alice_track]
    pcm = np.frombuffer(base64.b64decode(result["heard"]), dtype="<i2")
    got, level = spectrum_of(pcm, 16000)
    assert abs(got - 440) < 10 and level > 1000, f"the official agent heard {got:.0f} Hz at {level:.0f}"

    # Node 2 holds neither the room nor a socket, yet saw the room's story in order.
    story = [n for n in notes if getattr(n, "room_id", None) == room_id]
    names = [type(n).__name__ for n in story]
    assert names[:3] == ["RoomCreated", "PeerAdded", "PeerAdded"], names

    def first(kind: type, **match: str) -> int:
        return next(i for i, n in enumerate(story) if isinstance(n, kind) and all(getattr(n, k) == v for k, v in match.items()))

    for peer_id in (made["peer_id"], made["agent_id"]):
        assert first(ServerMessagePeerConnected, peer_id=peer_id) > 2
    agent_track = first(ServerMessageTrackAdded, peer_id=made["agent_id"])
    assert first(ServerMessagePeerConnected, peer_id=made["agent_id"]) < agent_track
    track_ids = [n.track.id for n in story if isinstance(n, ServerMessageTrackAdded)]
    assert track_ids == [alice_track, result["track_id"]], track_ids
