"""The media plane: PCM formats, Opus, playout buffers, pacing and fan-out.

It knows track ids and audio, never rooms, peers or protobuf: what goes on the wire is
built by an injected ``wrap`` function from the endpoint layer.
"""
