"""Peer types returned by the management API."""

from fishjam.api._models import PeerMetadata, PeerStatus, PeerType, SubscribeMode

__all__ = ["PeerMetadata", "PeerStatus", "PeerType", "SubscribeMode"]
