"""Server-side WebRTC networking: which addresses and ports media uses, and what clients are told.

* ``addresses``: which local addresses are gathered (``--rtc-interface``) and port ranges — pure.
* ``iceservers``: the ``connected.ice_servers`` a peer gets, TURN REST credentials — pure.
* ``demux``: the single-port demultiplexing table and drop accounting — pure.
* ``gathering``: the server's aioice connections: where they gather, the shared UDP port, NAT rebinding.
* ``network``: ``RtcNetwork``, what a server owns at run time (sockets, counters, the TURN check).
"""
