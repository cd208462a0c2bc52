"""Sans-I/O protocol codecs: bytes in, typed events out; builders return bytes.

No sockets, no awaits, no clock here. Each socket adapter in ``shoal.signaling`` feeds
frames to one of these objects and acts on what comes back.
"""
