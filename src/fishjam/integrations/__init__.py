"""Adapters that plug a Fishjam agent into agent frameworks (each behind its own extra)."""
