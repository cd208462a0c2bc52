"""Cluster mode: shoal nodes that share a room directory, tokens and load through Redis.

A room lives on exactly one node (its owner); every other node forwards REST calls and
relays agent and peer sockets for it. Redis holds only routing facts (which node owns a
room or a token, which nodes are alive and how loaded); the owner stays the authority
for its rooms, so a token the owner revoked fails whichever node a socket reaches.
"""

HOP_HEADER = "x-shoal-hop"
"""Marks a request or socket one node passed to another: its receiver serves it, never passes it on."""
