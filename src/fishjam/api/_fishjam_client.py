"""Management client: rooms, peers, agents and tokens over the REST API."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from fishjam.agent import Agent
from fishjam.api._http import HttpTransport
from fishjam.api._models import MoqAccess, Peer, Room, as_dict
from fishjam.api._options import (
    AgentOptions,
    AgentOutputOptions,
    PeerOptions,
    PeerOptionsVapi,
    RoomOptions,
)
from fishjam.errors import HTTPError, InvalidFishjamCredentialsError
from fishjam.utils import get_fishjam_url, get_livestream_whep_url, get_livestream_whip_url

__all__ = [
    "AgentOptions",
    "AgentOutputOptions",
    "FishjamClient",
    "MoqAccess",
    "Peer",
    "PeerOptions",
    "PeerOptionsVapi",
    "Room",
    "RoomOptions",
]

_PEER_SOCKET_SUFFIXES = ("/socket/peer/websocket", "/socket/agent/websocket")


def _segment(value: str) -> str:
    """Percent-encode one path segment, slashes included."""
    return quote(str(value), safe="")


class FishjamClient:
    """Manages rooms and peers of one Fishjam (or shoal) instance.

    Creating a client does not contact the server; use :meth:`create_and_verify` or
    :meth:`check_credentials` to find out early whether the credentials work.
    """

    def __init__(
        self,
        fishjam_id: str,
        management_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Point the client at ``fishjam_id`` (a Cloud id or a full server URL).

        ``transport`` replaces httpx's network layer, which tests use to answer requests
        in-process.
        """
        self._fishjam_id = fishjam_id
        self._fishjam_url = get_fishjam_url(fishjam_id)
        self._http = HttpTransport(self._fishjam_url, management_token, transport=transport)

    @classmethod
    def create_and_verify(cls, *, fishjam_id: str, management_token: str) -> FishjamClient:
        """Build a client and check its credentials before handing it out."""
        client = cls(fishjam_id=fishjam_id, management_token=management_token)
        client.check_credentials()
        return client

    def check_credentials(self) -> None:
        """Ask ``GET /validate`` whether the id and token are accepted.

        The endpoint answers 404 for bad credentials, which becomes
        :class:`~fishjam.errors.InvalidFishjamCredentialsError`.
        """
        response = self._http.request("GET", "/validate", raise_for_status=False)
        if response.status_code == HTTPStatus.NOT_FOUND:
            raise InvalidFishjamCredentialsError("Invalid Fishjam credentials")
        if not response.is_success:
            raise HTTPError.from_response(response)

    # Rooms

    def create_room(self, options: RoomOptions | None = None) -> Room:
        """Create a room; invalid enum options raise ``ValueError`` before any request."""
        body = (options or RoomOptions()).to_body()
        data = self._json("POST", "/room", body)
        return Room.from_dict(as_dict(data["data"])["room"])

    def get_all_rooms(self) -> list[Room]:
        """List every room the token can see."""
        data = self._json("GET", "/room")
        return [Room.from_dict(room) for room in data["data"]]

    def get_room(self, room_id: str) -> Room:
        """Fetch one room with its peers."""
        data = self._json("GET", f"/room/{_segment(room_id)}")
        return Room.from_dict(data["data"])

    def delete_room(self, room_id: str) -> None:
        """Delete a room, disconnecting and removing all of its peers."""
        self._http.request("DELETE", f"/room/{_segment(room_id)}")

    # Peers

    def create_peer(self, room_id: str, options: PeerOptions | None = None) -> tuple[Peer, str]:
        """Add a WebRTC peer; returns the peer and the token its client connects with."""
        data = self._add_peer(room_id, (options or PeerOptions()).to_body())
        return Peer.from_dict(data["peer"]), str(data["token"])

    def create_agent(self, room_id: str, options: AgentOptions | None = None) -> Agent:
        """Add an agent peer and return an :class:`~fishjam.agent.Agent` ready to connect."""
        data = self._add_peer(room_id, (options or AgentOptions()).to_body())
        peer = Peer.from_dict(data["peer"])
        base_url = self._agent_base_url(data.get("peer_websocket_url"))
        return Agent(peer.id, room_id, str(data["token"]), base_url)

    def create_vapi_agent(self, room_id: str, options: PeerOptionsVapi) -> Peer:
        """Add a VAPI bridge peer."""
        data = self._add_peer(room_id, options.to_body())
        return Peer.from_dict(data["peer"])

    def delete_peer(self, room_id: str, peer_id: str) -> None:
        """Remove a peer from a room, closing its socket if it is connected."""
        self._http.request("DELETE", f"/room/{_segment(room_id)}/peer/{_segment(peer_id)}")

    def refresh_peer_token(self, room_id: str, peer_id: str) -> str:
        """Issue a fresh token for a peer (tokens of unconnected peers expire)."""
        path = f"/room/{_segment(room_id)}/peer/{_segment(peer_id)}/refresh_token"
        data = self._json("POST", path)
        return str(as_dict(data["data"])["token"])

    def subscribe_peer(self, room_id: str, peer_id: str, target_peer_id: str) -> None:
        """Subscribe a manual-mode peer to every track of ``target_peer_id``."""
        path = f"/room/{_segment(room_id)}/peer/{_segment(peer_id)}/subscribe_peer"
        self._http.request("POST", path, params={"peer_id": target_peer_id})

    def subscribe_tracks(self, room_id: str, peer_id: str, track_ids: list[str]) -> None:
        """Subscribe a manual-mode peer to specific tracks."""
        path = f"/room/{_segment(room_id)}/peer/{_segment(peer_id)}/subscribe_tracks"
        self._http.request("POST", path, json_body={"track_ids": list(track_ids)})

    # Livestreams and MoQ

    def create_livestream_viewer_token(self, room_id: str) -> str:
        """Issue a token for watching a livestream room."""
        data = self._json("POST", f"/room/{_segment(room_id)}/viewer")
        return str(data["token"])

    def create_livestream_streamer_token(self, room_id: str) -> str:
        """Issue a token for publishing into a livestream room."""
        data = self._json("POST", f"/room/{_segment(room_id)}/streamer")
        return str(data["token"])

    def livestream_whip_url(self) -> str:
        """Where a WHIP publisher sends the livestream."""
        return get_livestream_whip_url(self._fishjam_id)

    def livestream_whep_url(self) -> str:
        """Where a WHEP player watches the livestream."""
        return get_livestream_whep_url(self._fishjam_id)

    def create_moq_access(
        self,
        publish_path: str | None = None,
        subscribe_path: str | None = None,
        ttl: int | None = None,
    ) -> MoqAccess:
        """Get Media-over-QUIC relay credentials; ``ttl`` (seconds) is sent only when given."""
        body: dict[str, Any] = {"publishPath": publish_path, "subscribePath": subscribe_path}
        if ttl is not None:
            body["ttl"] = ttl
        return MoqAccess.from_dict(self._json("POST", "/moq/access", body))

    # Helpers

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._http.request(method, path, json_body=body)
        return as_dict(response.json())

    def _add_peer(self, room_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data = self._json("POST", f"/room/{_segment(room_id)}/peer", body)
        return as_dict(data["data"])

    def _agent_base_url(self, peer_websocket_url: Any) -> str:
        """Derive the agent socket's base URL from the server's peer socket URL.

        A scheme-less value is assumed to be TLS, and the peer/agent socket path is
        stripped so that :class:`Agent` can append its own.
        """
        if not isinstance(peer_websocket_url, str) or not peer_websocket_url:
            return self._fishjam_url
        url = peer_websocket_url if "://" in peer_websocket_url else f"https://{peer_websocket_url}"
        for suffix in _PEER_SOCKET_SUFFIXES:
            url = url.removesuffix(suffix)
        return url
