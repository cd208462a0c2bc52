"""RtcNetwork: a server's WebRTC network set-up — sockets, candidates, ICE servers for clients.

Built once per server from its ``ShoalConfig``. Construction does everything that can fail
on a bad configuration (choosing addresses, binding the shared ``--rtc-udp-port`` sockets)
so that ``shoal serve`` exits with a clear message instead of failing later per call;
``start()`` (inside the event loop) attaches those sockets and checks the TURN servers in
the background.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from shoal import seam
from shoal.media.fast_audio import AudioFastPath
from shoal.net import gathering
from shoal.net.addresses import PortRange, local_interfaces, select_addresses
from shoal.net.admission import Stream, StreamAdmission
from shoal.net.iceservers import IcePolicy, IceServerEntry
from shoal.tally import Tally

log = logging.getLogger(__name__)

TURN_CHECK_PEER_ID = "shoal-startup-check"
"""The peer id in the credentials of the start-up TURN check (visible in coturn's log)."""


class RtcSetupError(ValueError):
    """The network options cannot be applied on this host (no address, port in use, ...)."""


class RtcNetwork:
    def __init__(
        self,
        *,
        public_ip: str | None = None,
        udp_port: int | None = None,
        port_range: PortRange | None = None,
        interfaces: Sequence[str] = (),
        ice: IcePolicy | None = None,
        host_interfaces: Mapping[str, Sequence[str]] | None = None,
        admission: StreamAdmission | None = None,
        debug_media_cost_s: float = 0.0,
        fast_audio: bool = True,
    ) -> None:
        gathering.install()
        self.ice = ice or IcePolicy()
        self.udp_port = udp_port
        found = local_interfaces() if host_interfaces is None else host_interfaces
        addresses = select_addresses(found, interfaces)
        if not addresses:
            if interfaces:
                raise RtcSetupError(
                    f"--rtc-interface {', '.join(interfaces)} matches no local address "
                    f"(this host has: {_describe(found)})"
                )
            addresses = select_addresses(found, ["127.0.0.0/8", "::1/128"])
            log.warning("no non-loopback interface found: WebRTC media gathers on loopback only")
        if public_ip is not None:
            ipv4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
            if len(ipv4) != 1:
                raise RtcSetupError(
                    f"--rtc-public-ip needs exactly one gathered IPv4 address to stand for, found "
                    f"{', '.join(ipv4) or 'none'}; choose it with --rtc-interface"
                )
        self.plan = gathering.GatherPlan(tuple(addresses), public_ip, port_range)
        if admission is not None:
            self.plan.admission = admission
        self.plan.debug_media_cost_s = debug_media_cost_s
        self.fast_audio = fast_audio
        self._turn_check: asyncio.Task[None] | None = None
        self.turn_checks: dict[str, str] = {}
        """TURN URL → ``"pending"``, ``"ok: …"``, ``"rejected: …"`` or ``"unreachable: …"``."""
        if udp_port is not None:
            for address in addresses:
                try:
                    sock = gathering.bind_udp(address, udp_port)
                except OSError as exc:
                    self._close_shared()
                    raise RtcSetupError(f"--rtc-udp-port {udp_port}: cannot bind UDP {address}:{udp_port}: {exc.strerror}") from None
                self.plan.shared[address] = gathering.SharedUdpSocket(sock, self.plan.stats, self.plan.notes)
        mode = f"one UDP port {udp_port}" if udp_port else f"UDP ports {port_range}" if port_range else "ephemeral UDP ports"
        announced = f", announced as {public_ip}" if public_ip else ""
        log.info("WebRTC media on %s (%s)%s", ", ".join(addresses), mode, announced)

    async def start(self) -> None:
        for shared in self.plan.shared.values():
            await shared.start()
        if self.ice.turn_urls:
            self.turn_checks = {u.url: "pending" for u in self.ice.turn_urls}
            self._turn_check = asyncio.create_task(self._check_turn_servers())

    async def close(self) -> None:
        if self._turn_check is not None:
            self._turn_check.cancel()
        self._close_shared()

    def _close_shared(self) -> None:
        for shared in self.plan.shared.values():
            shared.close()

    # per peer ----------------------------------------------------------------------------

    def peer_connection(self, label: str = "a WebRTC peer") -> RTCPeerConnection:
        """A server-side peer connection that gathers per this network's plan.

        The server itself uses no STUN/TURN server: it is the reachable end (its own or its
        ``--rtc-public-ip`` address); clients get the ICE servers to reach it.
        """
        # max-bundle: every m-line uses the first one's transport from the start (see webrtc.py).
        servers = gathering.GatherIceServers(self.plan, label=label)
        return RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

    def admission_stream(self, pc: RTCPeerConnection) -> Stream | None:
        """How the overload admission sees this peer connection's inbound media (None: not one of ours)."""
        found = _shoal_connection(pc)
        return found[1].stream if found is not None else None

    def fast_audio_path(self, pc: RTCPeerConnection, tally: Tally) -> AudioFastPath | None:
        """Take this connection's learnt audio streams in the datagram callback (None: not one of ours)."""
        found = _shoal_connection(pc) if self.fast_audio else None
        if found is None:
            return None
        transport, connection = found
        path = AudioFastPath(functools.partial(seam.rx_srtp, transport), tally)
        connection.fast_media = path
        return path

    def ice_servers_for(self, peer_id: str) -> list[IceServerEntry]:
        return self.ice.entries_for(peer_id, time.time())

    # observability -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        stats = self.plan.stats
        return {
            "addresses": list(self.plan.addresses),
            "public_ip": self.plan.public_ip,
            "udp_port": self.udp_port,
            "port_range": str(self.plan.port_range) if self.plan.port_range else None,
            "connections_gathered": stats.connections_gathered,
            "host_candidates": stats.host_candidates,
            "port_range_exhausted": stats.port_range_exhausted,
            "bind_errors": stats.bind_errors,
            "rebinds_followed": stats.rebinds_followed,
            "nominations_followed": stats.nominations_followed,
            "overload_dropped": stats.overload_dropped,
            "admission": self.plan.admission.stats(),
            "shared": {
                "datagrams_in": stats.shared_datagrams_in,
                "dropped": dict(stats.shared_dropped),
                "socket_errors": stats.shared_send_errors,
                "connections": sum(s.table.connections for s in self.plan.shared.values()),
                "addresses": sum(s.table.addresses for s in self.plan.shared.values()),
                "new_addresses": sum(s.table.new_addresses for s in self.plan.shared.values()),
                "refused_moves": sum(s.table.refused_moves for s in self.plan.shared.values()),
            },
            "turn_checks": dict(self.turn_checks),
        }

    async def _check_turn_servers(self) -> None:
        """Allocate once on every TURN server with the credentials peers get; log what went wrong."""
        username, credential = self.ice.credentials_for(TURN_CHECK_PEER_ID, time.time())
        results = await asyncio.gather(
            *(
                gathering.turn_allocate(u.host, u.port, u.transport, u.scheme == "turns", username, credential)
                for u in self.ice.turn_urls
            )
        )
        for url, result in zip(self.ice.turn_urls, results, strict=True):
            if result.ok:
                self.turn_checks[url.url] = f"ok: {result.detail}"
                log.info("TURN server %s accepted shoal's credentials (%s)", url.url, result.detail)
            elif result.rejected:
                self.turn_checks[url.url] = f"rejected: {result.detail}"
                hint = (
                    "does --turn-secret match coturn's static-auth-secret?"
                    if self.ice.turn_secret
                    else "are --ice-username/--ice-credential a user of that server?"
                )
                log.error("TURN server %s rejected shoal's credentials (%s): %s", url.url, result.detail, hint)
            else:
                self.turn_checks[url.url] = result.detail
                log.error("TURN server %s is %s: clients behind UDP-blocking firewalls will not connect", url.url, result.detail)


def _describe(interfaces: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{name} {' '.join(addresses)}" for name, addresses in interfaces.items()) or "no interfaces"


def _shoal_connection(pc: RTCPeerConnection) -> tuple[Any, gathering.ShoalConnection] | None:
    """The (bundled) DTLS transport and the shoal ICE connection under it, if ``pc`` gathered through a plan."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        connection = seam.dtls_ice_connection(transport)
        if isinstance(connection, gathering.ShoalConnection):
            return transport, connection
    return None
