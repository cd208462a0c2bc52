"""Forward TCP connections from an inherited listening socket to HOST:PORT (run inside a namespace).

    python forward.py FD HOST PORT

FD is a listening socket made in another network namespace (the test's, on 127.0.0.1); this
process runs in the server's namespace, so it accepts there and connects here. Used by
``netns.TcpForwarder``; ends on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

CHUNK = 64 * 1024


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()  # backpressure: read no more than the other side takes
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main(fd: int, host: str, port: int) -> None:
    listener = socket.socket(fileno=fd)
    listener.setblocking(False)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))

    server = await asyncio.start_server(handle, sock=listener)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
