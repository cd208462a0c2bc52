"""Glue between the room domain and the media plane: agent (and, later, WebRTC) endpoints."""
