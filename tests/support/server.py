"""Tests use the public harness in ``shoal.testing``."""

from shoal.testing import ServerProcess, free_port, start_server

__all__ = ["ServerProcess", "free_port", "start_server"]
