"""Room configuration types returned by the management API."""

from fishjam.api._models import RoomConfig, RoomType, VideoCodec

__all__ = ["RoomConfig", "VideoCodec", "RoomType"]
