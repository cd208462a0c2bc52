"""The test networks, built from namespaces (netns.py). Documentation addresses only.

1:1 NAT (:func:`nat_network`)::

    participant ns                router ns                                        server ns
    203.0.113.20 ──── br-pub ──── 203.0.113.1          198.51.100.1 ──── br-priv ──── 198.51.100.10
    (aiortc peer,                 203.0.113.10 (the server's public address)          shoal serve --host 0.0.0.0
     Chromium)                    DNAT 203.0.113.10 → 198.51.100.10                   (no public address)
    stateful firewall:            SNAT 198.51.100.10 → 203.0.113.10
    inbound UDP only in reply     public side → 198.51.100.0/24 only if DNATed
    to what it sent

The router is a static 1:1 NAT (cloud VMs and ``docker run -p`` behave so). The participant,
like nearly every client behind a home router or firewall, accepts inbound UDP only in reply to
what it sent: the server's own connectivity checks cannot open the path, so ICE succeeds only if
the participant sends to an address that reaches the server, which is what ``--rtc-public-ip``
announces. Without it the server announces 198.51.100.10, which the public side cannot reach.

Routed, optionally with UDP blocked and a TURN server (:func:`routed_network`)::

    participant ns                router ns                                       server ns
    203.0.113.20 ──── br-pub ──── 203.0.113.1          198.51.100.1 ──── br-priv ──── 198.51.100.10
                        │         forward: UDP between 203.0.113.20 and
    turn ns             │         198.51.100.10 dropped (block_udp=True); TCP passes
    203.0.113.30 ───────┘
    (coturn, relays only to 198.51.100.10)

Participant behind a home NAT that can change its mapping (:func:`client_nat_network`)::

    participant ns                router ns                                       server ns
    198.51.100.20 ─── br-priv ─── 198.51.100.1        203.0.113.1 ──── br-pub ──── 203.0.113.10
                                  SNAT 198.51.100.0/24 → 203.0.113.1               (a public VM)
                                  (:func:`rebind_client_nat`: → 203.0.113.2)
                                  public → private only in reply

The test process stays in the root namespace and reaches the server's REST API and agent socket
through ``netns.TcpForwarder`` (its loopback, connections opened from the server's namespace).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.net.netns import Namespace, NetLab

PUBLIC_NET = "203.0.113.0/24"
PRIVATE_NET = "198.51.100.0/24"
ROUTER_PUBLIC = "203.0.113.1"
ROUTER_PRIVATE = "198.51.100.1"
SERVER_PRIVATE = "198.51.100.10"
SERVER_PUBLIC = "203.0.113.10"  # the 1:1 NAT address of the server
PARTICIPANT = "203.0.113.20"
TURN = "203.0.113.30"
CLIENT_PRIVATE = "198.51.100.20"  # a participant behind its own NAT
CLIENT_NAT = "203.0.113.1"  # that NAT's public address ...
CLIENT_NAT_AFTER_REBIND = "203.0.113.2"  # ... and the one it maps to after rebind_client_nat()


@dataclass
class Network:
    lab: NetLab
    participant: Namespace
    router: Namespace
    server: Namespace
    server_host: str
    """The address participants use to reach the server (its public one behind NAT)."""
    turn: Namespace | None = None


def _router(lab: NetLab) -> Namespace:
    router = lab.router()
    # Keep bridged frames out of the IP hooks (br_netfilter may be loaded on the host): only
    # routed traffic meets the router's rules.
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        router.run("sysctl", "-q", "-w", f"{key}=0", check=False)
    return router


def nat_network(lab: NetLab) -> Network:
    """Participant → router (1:1 NAT of 203.0.113.10 to 198.51.100.10) → server; see the module docstring."""
    router = _router(lab)
    public = lab.segment(router, "pub", f"{ROUTER_PUBLIC}/24", extra=[f"{SERVER_PUBLIC}/32"])
    private = lab.segment(router, "priv", f"{ROUTER_PRIVATE}/24")
    participant = lab.host("part")
    public.attach(participant, f"{PARTICIPANT}/24")
    server = lab.host("srv")
    private.attach(server, f"{SERVER_PRIVATE}/24")
    router.nft(f"""
table ip shoal_nat {{
  chain prerouting {{
    type nat hook prerouting priority dstnat;
    ip daddr {SERVER_PUBLIC} dnat to {SERVER_PRIVATE}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    ip saddr {SERVER_PRIVATE} snat to {SERVER_PUBLIC}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ip daddr {PRIVATE_NET} ct status dnat accept
    ip daddr {PRIVATE_NET} counter drop
  }}
}}
""")
    participant.nft("""
table ip shoal_client_firewall {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    meta l4proto udp counter drop
  }
}
""")
    return Network(lab, participant, router, server, SERVER_PUBLIC)


def routed_network(lab: NetLab, *, block_udp: bool = False, with_turn: bool = False) -> Network:
    """Participant and server routed without NAT; ``block_udp`` drops UDP between them; ``with_turn`` adds a TURN host."""
    router = _router(lab)
    public = lab.segment(router, "pub", f"{ROUTER_PUBLIC}/24")
    private = lab.segment(router, "priv", f"{ROUTER_PRIVATE}/24")
    participant = lab.host("part")
    public.attach(participant, f"{PARTICIPANT}/24")
    server = lab.host("srv")
    private.attach(server, f"{SERVER_PRIVATE}/24")
    turn = None
    if with_turn:
        turn = lab.host("turn")
        public.attach(turn, f"{TURN}/24")
    if block_udp:
        router.nft(f"""
table ip shoal_firewall {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ip saddr {PARTICIPANT} ip daddr {SERVER_PRIVATE} meta l4proto udp counter drop
    ip saddr {SERVER_PRIVATE} ip daddr {PARTICIPANT} meta l4proto udp counter drop
  }}
}}
""")
    return Network(lab, participant, router, server, SERVER_PRIVATE, turn)


def client_nat_network(lab: NetLab) -> Network:
    """Participant 198.51.100.20 behind a masquerading router; the server on 203.0.113.10, public."""
    router = _router(lab)
    private = lab.segment(router, "priv", f"{ROUTER_PRIVATE}/24")
    public = lab.segment(router, "pub", f"{CLIENT_NAT}/24", extra=[f"{CLIENT_NAT_AFTER_REBIND}/32"])
    participant = lab.host("part")
    private.attach(participant, f"{CLIENT_PRIVATE}/24")
    server = lab.host("srv")
    public.attach(server, f"{SERVER_PUBLIC}/24")
    router.nft(f"""
table ip shoal_client_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat;
    ip saddr {PRIVATE_NET} snat to {CLIENT_NAT}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ip daddr {PRIVATE_NET} counter drop
  }}
}}
""")
    return Network(lab, participant, router, server, SERVER_PUBLIC)


def rebind_client_nat(net: Network) -> None:
    """The NAT forgets its UDP mappings and maps new ones to another address (as after a router reboot
    or a mobile handover). TCP mappings stay, so signaling is not cut."""
    net.router.run("nft", "flush", "chain", "ip", "shoal_client_nat", "postrouting")
    net.router.run(
        "nft", "add", "rule", "ip", "shoal_client_nat", "postrouting",
        "ip", "saddr", PRIVATE_NET, "snat", "to", CLIENT_NAT_AFTER_REBIND,
    )
    net.router.run("conntrack", "-D", "-p", "udp", check=False)  # exits 1 when nothing matched


def udp_mappings(net: Network) -> str:
    """The router's UDP connection tracking entries (``conntrack -L -p udp``)."""
    return net.router.run("conntrack", "-L", "-p", "udp", check=False)


def nft_counters(ns: Namespace) -> str:
    """The namespace's ruleset with packet counters, for failure messages."""
    return ns.run("nft", "list", "ruleset", check=False)
