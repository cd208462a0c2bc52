"""Which local addresses WebRTC media is gathered on, and port ranges; pure functions, no I/O.

aioice gathers every non-loopback address. On a host with Docker that includes bridge
addresses no client can reach, and each useless candidate costs clients a connectivity
check; ``--rtc-interface`` chooses instead.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

EXCLUDED_BY_DEFAULT = ("docker*", "br-*", "veth*", "virbr*", "lo")
"""Interface name globs left out when no ``--rtc-interface`` is given: container bridges and loopback."""


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int

    def __len__(self) -> int:
        return self.high - self.low + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def parse_port_range(text: str) -> PortRange:
    """``"MIN-MAX"`` (inclusive, 1..65535, MIN <= MAX); ``ValueError`` with the reason otherwise."""
    low_text, dash, high_text = text.strip().partition("-")
    if not dash or not low_text.strip().isdigit() or not high_text.strip().isdigit():
        raise ValueError(f"--rtc-port-range {text!r}: expected MIN-MAX, e.g. 50000-50100")
    low, high = int(low_text), int(high_text)
    if not (1 <= low <= 65535 and 1 <= high <= 65535):
        raise ValueError(f"--rtc-port-range {text!r}: ports must be within 1..65535")
    if low > high:
        raise ValueError(f"--rtc-port-range {text!r}: MIN is greater than MAX")
    return PortRange(low, high)


def validate_interface_pattern(pattern: str) -> str:
    """An interface glob, an IP address or a CIDR; returns it stripped, ``ValueError`` if empty or bad CIDR."""
    pattern = pattern.strip()
    if not pattern:
        raise ValueError("--rtc-interface: empty pattern")
    if "/" in pattern:
        try:
            ipaddress.ip_network(pattern, strict=False)
        except ValueError as exc:
            raise ValueError(f"--rtc-interface {pattern!r}: not a CIDR ({exc})") from None
    return pattern


def _matches(pattern: str, name: str, address: str) -> bool:
    if "/" in pattern:
        network = ipaddress.ip_network(pattern, strict=False)
        ip = ipaddress.ip_address(address)
        return ip.version == network.version and ip in network
    try:
        return ipaddress.ip_address(pattern) == ipaddress.ip_address(address)
    except ValueError:
        return fnmatch.fnmatchcase(name, pattern)


def _usable(address: str) -> bool:
    """Link-local IPv6 needs a scope id no SDP candidate carries (aioice skips it too)."""
    ip = ipaddress.ip_address(address)
    return not (ip.version == 6 and ip.is_link_local) and not ip.is_unspecified


def select_addresses(interfaces: Mapping[str, Sequence[str]], patterns: Iterable[str] = ()) -> list[str]:
    """The local addresses to gather, in interface order, without duplicates.

    ``interfaces`` maps interface name → its addresses. With patterns, an address is taken
    if any pattern matches its interface name or the address itself (loopback included,
    when asked for). Without patterns: every usable address of interfaces not matching
    ``EXCLUDED_BY_DEFAULT`` and not a loopback address.
    """
    wanted = list(patterns)
    chosen: list[str] = []
    for name, addresses in interfaces.items():
        for address in addresses:
            if address in chosen or not _usable(address):
                continue
            if wanted:
                take = any(_matches(p, name, address) for p in wanted)
            else:
                take = not ipaddress.ip_address(address).is_loopback and not any(
                    fnmatch.fnmatchcase(name, glob) for glob in EXCLUDED_BY_DEFAULT
                )
            if take:
                chosen.append(address)
    return chosen


def local_interfaces() -> dict[str, list[str]]:
    """Interface name → addresses of this host (the one I/O function here, via ``ifaddr``)."""
    import ifaddr

    found: dict[str, list[str]] = {}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            found.setdefault(adapter.nice_name, []).append(address)
    return found


def validate_public_ip(text: str) -> str:
    """``--rtc-public-ip`` must be a literal IPv4 address (announced in candidates as-is)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"--rtc-public-ip {text!r}: not an IP address") from None
    if ip.version != 4 or ip.is_unspecified:
        raise ValueError(f"--rtc-public-ip {text!r}: must be a specific IPv4 address")
    return str(ip)
