"""Tools for testing against a real shoal server: start one, and join its rooms as a WebRTC peer."""

from shoal.testing.server import ServerProcess, free_port, start_server

__all__ = ["ServerProcess", "free_port", "start_server"]
