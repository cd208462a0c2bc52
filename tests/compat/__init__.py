"""Compatibility tests: the official ``fishjam-server-sdk`` drives a real shoal server."""
