"""Helpers of the ICE/network tests: a server's UDP sockets, its network counters, free UDP ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from tests.support.agent_client import rest
from tests.support.server import ServerProcess


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports that are free on every address right now (best effort)."""
    for _ in range(200):
        low = free_udp_port()
        if low + size > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(low, low + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("0.0.0.0", port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free UDP port range")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _parse_address(hex_address: str, v6: bool) -> tuple[str, int]:
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    if v6:
        # /proc shows the address as four host-order 32-bit words.
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, raw), int(port_hex, 16)
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port_hex, 16)


def udp_sockets_of(pid: int) -> list[tuple[str, int]]:
    """Local (address, port) of every UDP socket process ``pid`` holds, from /proc."""
    inodes = _socket_inodes(pid)
    found = []
    for table, v6 in (("udp", False), ("udp6", True)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append(_parse_address(fields[1], v6))
    return found


def rtc_stats(server: ServerProcess) -> dict[str, Any]:
    with rest(server) as client:
        response = client.get("/rtc/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats
