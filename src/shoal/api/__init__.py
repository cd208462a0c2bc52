"""The REST edge: parse and validate, call the room manager, serialise. No business logic."""
