"""The server's own pages: ``/demo`` (talk to a parrot agent) and ``/dashboard`` (what is live)."""
