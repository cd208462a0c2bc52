"""I/O adapters: one WebSocket loop per channel (peer, agent, notifier), all of one shape.

Each reads frames, passes them to its sans-I/O codec, acts on the events and writes
through a bounded ``Outbox``; protocol errors close that one socket with a reason.
"""
