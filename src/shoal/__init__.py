"""shoal: a self-hosted, Fishjam-compatible real-time media server built for AI agents."""

__version__ = "0.1.0"
