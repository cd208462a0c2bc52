"""The room domain: rooms, peers, tracks and subscriptions as plain objects.

Nothing here does I/O or knows about sockets, codecs or protobuf; operations change state
and publish ``DomainEvent``s, in the order the notification protocol requires.
"""
