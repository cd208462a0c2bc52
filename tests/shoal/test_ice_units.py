"""The pure parts of the WebRTC network options, driven with many generated inputs.

Address selection, port ranges, ICE server URLs and TURN REST credentials, the STUN
username parser against aioice's own encoder, the single-port demultiplexing table against
a small reference model (hundreds of thousands of operations), the once-per-cause log, and
the rebinding rule.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import hmac
import random
import socket
import string
import time
from collections import Counter, OrderedDict
from typing import Any

import aioice.stun
import pytest

from shoal import seam
from shoal.config import ShoalConfig
from shoal.net.addresses import PortRange, parse_port_range, select_addresses, validate_public_ip
from shoal.net.demux import Address, DemuxTable, Drop, OnceLog, StunInfo, inspect_stun
from shoal.net.gathering import (
    MAX_QUEUED_DATAGRAMS,
    REBIND_SILENCE_S,
    GatherPlan,
    NetStats,
    PortRangeExhausted,
    SharedUdpSocket,
    ShoalConnection,
    bind_in_range,
    bind_udp,
    should_follow,
)
from shoal.net.iceservers import IcePolicy, IceServerEntry, parse_ice_url, turn_rest_credentials

# --- addresses -------------------------------------------------------------------------

HOST = {
    "lo": ["127.0.0.1", "::1"],
    "eth0": ["198.51.100.7", "fe80::1", "2001:db8::7"],
    "docker0": ["172.17.0.1"],
    "br-1a2b": ["172.18.0.1"],
    "veth12": ["fe80::2"],
    "wg0": ["10.8.0.1"],
}


def test_default_selection_leaves_out_loopback_link_local_and_container_bridges() -> None:
    assert select_addresses(HOST) == ["198.51.100.7", "2001:db8::7", "10.8.0.1"]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["eth*"], ["198.51.100.7", "2001:db8::7"]),
        (["198.51.100.7"], ["198.51.100.7"]),
        (["198.51.100.0/24", "10.0.0.0/8"], ["198.51.100.7", "10.8.0.1"]),
        (["lo"], ["127.0.0.1", "::1"]),
        (["127.0.0.1"], ["127.0.0.1"]),
        (["docker0"], ["172.17.0.1"]),
        (["2001:db8::/32"], ["2001:db8::7"]),
        (["nothing*"], []),
    ],
)
def test_patterns_choose_by_interface_name_address_or_cidr(patterns: list[str], expected: list[str]) -> None:
    assert select_addresses(HOST, patterns) == expected


def test_port_ranges_parse_and_bad_ones_say_why() -> None:
    assert parse_port_range("50000-50100") == PortRange(50000, 50100)
    assert len(parse_port_range("7-7")) == 1
    for text, why in [("5-1", "greater"), ("0-10", "within"), ("1-70000", "within"), ("abc", "MIN-MAX"), ("5", "MIN-MAX")]:
        with pytest.raises(ValueError, match=why):
            parse_port_range(text)


def test_public_ip_must_be_a_specific_ipv4_address() -> None:
    assert validate_public_ip("203.0.113.5") == "203.0.113.5"
    for bad in ("example.com", "0.0.0.0", "2001:db8::1", ""):
        with pytest.raises(ValueError, match="--rtc-public-ip"):
            validate_public_ip(bad)


def test_bind_in_range_finds_the_free_ports_and_reports_exhaustion() -> None:
    rng = random.Random(1)
    probe = bind_in_range("127.0.0.1", PortRange(20000, 60000), rng)
    low = probe.getsockname()[1]
    probe.close()
    ports = PortRange(low, low + 2)
    held: list[socket.socket] = []
    try:
        for _ in range(len(ports)):
            sock = bind_in_range("127.0.0.1", ports, rng)
            held.append(sock)
            assert sock.getsockname()[1] in ports
        assert len({s.getsockname()[1] for s in held}) == len(ports)
        with pytest.raises(PortRangeExhausted, match="no free UDP port") as caught:
            bind_in_range("127.0.0.1", ports, rng)
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        for sock in held:
            sock.close()


# --- ICE servers and TURN credentials ---------------------------------------------------


def test_ice_urls_parse_with_default_ports_and_transports() -> None:
    assert parse_ice_url("stun:stun.example.com").port == 3478
    turn = parse_ice_url("turn:203.0.113.5:3479?transport=tcp")
    assert (turn.host, turn.port, turn.transport, turn.is_turn) == ("203.0.113.5", 3479, "tcp", True)
    turns = parse_ice_url("turns:turn.example.com")
    assert (turns.port, turns.transport) == (5349, "tcp")
    assert parse_ice_url("turn:[2001:db8::1]:3478").host == "2001:db8::1"
    for bad in ("http://x", "stun:", "stun:x:1?transport=udp", "turn:x:99999", "turn:x?transport=sctp", "turns:x?transport=udp", "turn:a b"):
        with pytest.raises(ValueError, match="--ice-server"):
            parse_ice_url(bad)


def coturn_password(secret: str, username: str) -> str:
    """coturn's check for use-auth-secret: base64 of HMAC-SHA1 over the username, keyed by the secret."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_turn_rest_credentials_are_coturns_scheme_for_thousands_of_peers() -> None:
    rng = random.Random(9)
    for _ in range(5000):
        secret = "".join(rng.choices(string.printable, k=rng.randint(1, 64)))
        peer_id = "".join(rng.choices(string.ascii_letters + string.digits + "-", k=rng.randint(1, 40)))
        now = rng.uniform(1.6e9, 2.0e9)
        ttl = rng.randint(1, 10**6)
        username, credential = turn_rest_credentials(secret, peer_id, ttl, now)
        expiry, _, who = username.partition(":")
        assert int(expiry) == int(now) + ttl and who == peer_id
        assert credential == coturn_password(secret, username)
        assert len(base64.b64decode(credential)) == 20


def test_ice_policy_validates_the_options_together() -> None:
    for kwargs, why in [
        ({"urls": ["turn:x"]}, "need --turn-secret"),
        ({"urls": ["turn:x"], "username": "u"}, "go together"),
        ({"urls": ["turn:x"], "username": "u", "credential": "c", "turn_secret": "s"}, "exclusive"),
        ({"urls": ["stun:x"], "turn_secret": "s"}, "no turn:"),
        ({"urls": ["turn:x"], "turn_secret": "s", "turn_ttl_s": 0}, "--turn-ttl"),
        ({"urls": ["turn:x"], "turn_secret": ""}, "empty"),
    ]:
        with pytest.raises(ValueError, match=why):
            IcePolicy.build(**kwargs)  # type: ignore[arg-type]


def test_peers_get_stun_without_and_turn_with_their_own_credentials() -> None:
    policy = IcePolicy.build(["stun:s:3478", "turn:t:3478", "turns:t:5349"], turn_secret="k", turn_ttl_s=600)
    entries = policy.entries_for("peer-1", now=1_700_000_000.5)
    username = "1700000600:peer-1"
    assert entries == [
        IceServerEntry(("stun:s:3478",)),
        IceServerEntry(("turn:t:3478", "turns:t:5349"), username, coturn_password("k", username)),
    ]
    static = IcePolicy.build(["turn:t"], username="u", credential="c")
    assert static.entries_for("any", 0) == [IceServerEntry(("turn:t",), "u", "c")]
    assert IcePolicy.build([]).entries_for("p", 0) == []


def test_config_refuses_bad_network_options_with_the_option_named() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        ShoalConfig(rtc_udp_port=50000, rtc_port_range="50000-50010")
    with pytest.raises(ValueError, match="--rtc-udp-port"):
        ShoalConfig(rtc_udp_port=0)
    with pytest.raises(ValueError, match="--rtc-interface"):
        ShoalConfig(rtc_interfaces=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="--ice-server"):
        ShoalConfig(ice_servers=("turn:",))
    config = ShoalConfig(rtc_port_range="50000-50010", ice_servers=("turn:t",), turn_secret="s")
    assert config.port_range == PortRange(50000, 50010)
    assert config.ice_policy.turn_secret == "s"


# --- STUN username parsing --------------------------------------------------------------

ICE_CHARS = string.ascii_letters + string.digits + "+/"


def aioice_request(username: str | None, rng: random.Random, method: aioice.stun.Method = aioice.stun.Method.BINDING,
                   message_class: aioice.stun.Class = aioice.stun.Class.REQUEST) -> bytes:
    message = aioice.stun.Message(message_method=method, message_class=message_class)
    message.attributes["PRIORITY"] = rng.randint(0, 2**31)
    if username is not None:
        message.attributes["USERNAME"] = username
    if rng.random() < 0.5:
        message.attributes["ICE-CONTROLLING"] = rng.getrandbits(64)
    if rng.random() < 0.5:
        message.attributes["USE-CANDIDATE"] = None
    message.add_message_integrity(b"".join(rng.choice(ICE_CHARS).encode() for _ in range(22)))
    message.add_fingerprint()
    return bytes(message)


def test_the_ufrag_parser_agrees_with_aioices_encoder_on_many_messages() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        local = "".join(rng.choices(ICE_CHARS, k=rng.randint(4, 32)))
        remote = "".join(rng.choices(ICE_CHARS, k=rng.randint(4, 32)))
        info = inspect_stun(aioice_request(f"{local}:{remote}", rng))
        assert isinstance(info, StunInfo)
        assert (info.message_type, info.ufrag) == (0x0001, local)
    response = aioice_request(None, rng, message_class=aioice.stun.Class.RESPONSE)
    info = inspect_stun(response)
    assert isinstance(info, StunInfo) and info.message_type == 0x0101 and info.ufrag is None


def test_the_parser_never_raises_on_garbage_truncations_and_bit_flips() -> None:
    rng = random.Random(4)
    valid = aioice_request("abcd:efgh", rng)
    for _ in range(100000):
        choice = rng.random()
        if choice < 0.3:
            data = rng.randbytes(rng.randint(0, 300))
        elif choice < 0.6:
            data = valid[: rng.randint(0, len(valid))]
        else:
            flipped = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            data = bytes(flipped)
        result = inspect_stun(data)
        assert result is None or result is Drop.MALFORMED_STUN or isinstance(result, StunInfo)
        if result is None:
            assert len(data) < 20 or data[0] >= 4 or data[4:8] != b"\x21\x12\xa4\x42"


# --- the demultiplexing table against a reference model ----------------------------------


class ModelDemux:
    """The rules of ``shoal.net.demux``, restated as simply as possible."""

    def __init__(self, max_addresses: int) -> None:
        self.max = max_addresses
        self.ufrags: dict[str, int] = {}
        self.owner: dict[Address, int] = {}
        self.recent: dict[int, OrderedDict[Address, None]] = {}
        self.pinned: dict[int, Address] = {}

    def register(self, ufrag: str, conn: int) -> None:
        self.ufrags[ufrag] = conn
        self.recent[conn] = OrderedDict()

    def unregister(self, conn: int) -> None:
        self.ufrags = {u: c for u, c in self.ufrags.items() if c != conn}
        self.owner = {a: c for a, c in self.owner.items() if c != conn}
        self.recent.pop(conn, None)
        self.pinned.pop(conn, None)

    def learn(self, address: Address, conn: int) -> bool:
        if self.owner.get(address, conn) != conn:
            return False  # another live connection holds it
        self.recent[conn].pop(address, None)
        self.recent[conn][address] = None
        self.owner[address] = conn
        if len(self.recent[conn]) > self.max:
            gone = next(a for a in self.recent[conn] if a != self.pinned.get(conn))
            del self.recent[conn][gone]
            del self.owner[gone]
        return True

    def pin(self, conn: int, address: Address) -> None:
        if self.owner.get(address) == conn:
            self.pinned[conn] = address

    def route(self, kind: str, ufrag: str | None, address: Address) -> int | Drop:
        bound = self.owner.get(address)
        if kind == "media":
            return bound if bound is not None else Drop.NOT_STUN
        if kind == "request" and ufrag is not None:
            return self.ufrags.get(ufrag, Drop.UNKNOWN_UFRAG)  # routed, never bound by itself
        if bound is not None:
            return bound
        return Drop.NO_USERNAME if kind == "request" else Drop.NOT_BINDING_REQUEST


def test_the_demux_table_follows_the_rules_over_300000_random_operations() -> None:
    """Routing by ufrag without binding, binding only what a connection vouches for, no
    moves between live connections, pinned addresses surviving eviction, and unregistration,
    all checked against the reference model after every step."""
    rng = random.Random(5)
    table: DemuxTable[int] = DemuxTable(max_addresses=4)
    model = ModelDemux(4)
    live: dict[int, str] = {}
    next_conn = 0
    addresses = [(f"198.51.100.{i}", 40000 + j) for i in range(6) for j in range(5)]
    requests = {}

    def request(ufrag: str | None) -> bytes:
        if ufrag not in requests:
            requests[ufrag] = aioice_request(None if ufrag is None else f"{ufrag}:remote", rng)
        return requests[ufrag]

    response = aioice_request(None, rng, message_class=aioice.stun.Class.RESPONSE)
    rtp = bytes([0x80, 0x6F]) + bytes(100)
    refused = 0
    for step in range(300000):
        op = rng.random()
        if op < 0.01 or not live:
            ufrag = f"u{next_conn}"
            table.register(ufrag, next_conn)
            model.register(ufrag, next_conn)
            live[next_conn] = ufrag
            next_conn += 1
            continue
        if op < 0.02:
            conn = rng.choice(list(live))
            table.unregister(conn)
            model.unregister(conn)
            del live[conn]
            continue
        address = rng.choice(addresses)
        if op < 0.2:
            conn = rng.choice(list(live))
            got_learn, want_learn = table.learn(address, conn), model.learn(address, conn)
            assert got_learn == want_learn, f"step {step}: learn {address} for {conn}"
            refused += not want_learn
            continue
        if op < 0.23:
            conn = rng.choice(list(live))
            table.pin(conn, address)
            model.pin(conn, address)
            continue
        if op < 0.5:
            ufrag = rng.choice([*live.values(), "ghost"]) if rng.random() < 0.95 else None
            got = table.route(request(ufrag), address)
            want = model.route("request", ufrag, address)
        elif op < 0.55:
            got = table.route(response, address)
            want = model.route("response", None, address)
        else:
            got = table.route(rtp, address)
            want = model.route("media", None, address)
        assert got == want, f"step {step}: {got} != {want} for {address}"
        if step % 1000 == 0:
            assert table.addresses == len(model.owner) <= 4 * len(live)
            for conn in live:
                assert set(table.addresses_of(conn)) == set(model.recent[conn])
    assert table.refused_moves == refused > 0
    for conn in list(live):
        table.unregister(conn)
    assert table.addresses == 0 and table.connections == 0


def test_rebinding_keeps_a_connection_reachable_from_its_new_address() -> None:
    rng = random.Random(6)
    table: DemuxTable[str] = DemuxTable()
    table.register("alice", "A")
    table.register("bob", "B")
    old, new = ("203.0.113.9", 40000), ("203.0.113.9", 40001)
    rtp = bytes([0x80]) + bytes(50)
    assert table.route(rtp, old) is Drop.NOT_STUN
    assert table.route(aioice_request("alice:x", rng), old) == "A"
    assert table.route(rtp, old) is Drop.NOT_STUN  # routed to A, but only A's integrity check binds it
    assert table.learn(old, "A")
    assert table.route(rtp, old) == "A"
    assert table.route(rtp, new) is Drop.NOT_STUN  # media first from the new address: not yet
    assert table.route(aioice_request("alice:x", rng), new) == "A" and table.learn(new, "A")
    assert table.route(rtp, new) == "A" and table.new_addresses == 1
    assert table.route(aioice_request("bob:y", rng), new) == "B"  # B gets to check the request...
    assert not table.learn(new, "B")  # ...but cannot take an address A holds
    assert table.route(rtp, new) == "A" and table.refused_moves == 1
    table.learn(("198.51.100.1", 3478), "A")  # A's own check to a candidate: its answer comes back
    assert table.route(aioice_request(None, rng, message_class=aioice.stun.Class.RESPONSE), ("198.51.100.1", 3478)) == "A"
    with pytest.raises(ValueError, match="already in use"):
        table.register("alice", "C")
    table.unregister("A")
    assert table.route(rtp, old) is Drop.NOT_STUN
    assert table.route(aioice_request("alice:x", rng), old) is Drop.UNKNOWN_UFRAG
    assert table.learn(new, "B")  # free again once A is gone


def test_a_pinned_address_survives_a_flood_of_vouched_addresses() -> None:
    """An on-path attacker replaying a client's authenticated checks from many ports cannot
    evict the client's selected address. Fails without pinning (the oldest goes first)."""
    table: DemuxTable[str] = DemuxTable(max_addresses=4)
    table.register("alice", "A")
    selected = ("203.0.113.9", 40000)
    assert table.learn(selected, "A")
    table.pin("A", selected)
    for port in range(1000):
        table.learn(("198.51.100.66", 50000 + port), "A")
    assert table.owner_of(selected) == "A" and len(table.addresses_of("A")) == 4
    assert table.evicted_addresses == 1000 - 3


# --- logging once per cause, the rebinding rule ---------------------------------------------


def test_once_log_logs_the_first_of_each_cause_and_then_one_summary_per_interval() -> None:
    lines: list[str] = []
    now = [0.0]
    notes = OnceLog(lines.append, lambda: now[0], interval_s=60)
    for i in range(100000):
        now[0] = i * 0.01  # 1000 s of a flood at 100 per second, of two causes
        notes.note("garbage", lambda: "garbage")
        if i % 2:
            notes.note("ufrag", "unknown ufrag")
    assert notes.counts == {"garbage": 100000, "ufrag": 50000}
    garbage = [line for line in lines if line.startswith("garbage")]
    assert garbage[0] == "garbage (logged once; later ones counted)"
    assert 15 <= len(garbage) <= 18, len(garbage)  # one per minute
    assert "5999 more like it in the last 60 s" in garbage[1]
    assert sum(1 for line in lines if line.startswith("unknown ufrag")) == len(garbage)


def test_a_nominating_request_is_followed_at_once_a_consent_check_only_after_silence() -> None:
    assert should_follow(True, 0.0)
    assert not should_follow(False, 0.02)
    assert not should_follow(False, REBIND_SILENCE_S - 0.01)
    assert should_follow(False, REBIND_SILENCE_S)


# --- the seam's start-up check --------------------------------------------------------------


def test_the_seam_accepts_the_installed_libraries_and_names_an_internal_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fails if a changed aioice would only break calls later instead of stopping start-up."""
    import aioice

    from shoal import seam

    seam.check_internals()
    monkeypatch.delattr(aioice.Connection, "_find_pair")
    with pytest.raises(seam.SeamError, match=r"aioice.Connection._find_pair\(protocol, remote_candidate\)"):
        seam.check_internals()


# --- the shared socket, driven without the network ----------------------------------------------


class RecordingTransport(asyncio.DatagramTransport):
    """Stands in for the shared socket's transport: remembers what was sent where."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        self.sent.append((bytes(data), addr))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def test_the_shared_socket_routes_200000_mixed_datagrams_to_the_right_connections() -> None:
    """Media of known addresses reaches exactly its connection's queue, checks are answered
    from the shared socket, every bad datagram is counted under its reason with a handful of
    log lines, and closing the connections empties the tables. Fails if one connection's
    packets leak into another's, a drop goes uncounted, or the log grows with the flood."""
    rng = random.Random(8)
    lines: list[str] = []
    stats = NetStats()
    notes = OnceLog(lines.append, time.monotonic)
    plan = GatherPlan(("127.0.0.1",), stats=stats, notes=notes)
    sock = bind_udp("127.0.0.1", 0)
    shared = SharedUdpSocket(sock, stats, notes)
    transport = RecordingTransport()
    shared.connection_made(transport)
    plan.shared["127.0.0.1"] = shared
    connections = [ShoalConnection(shoal_plan=plan, ice_controlling=False) for _ in range(20)]
    clients: dict[int, tuple[str, int]] = {}
    for i, connection in enumerate(connections):
        [candidate] = await connection.get_component_candidates(1, [])
        assert candidate.port == sock.getsockname()[1]
        clients[i] = (f"198.51.100.{i + 1}", 50000 + i)
        request = aioice.stun.Message(message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{connection.local_username}:client{i}"
        request.attributes["PRIORITY"] = 1
        request.add_message_integrity(connection.local_password.encode())
        request.add_fingerprint()
        shared.datagram_received(bytes(request), clients[i])
    answered = {addr for data, addr in transport.sent if data[:2] == b"\x01\x01"}
    assert answered == set(clients.values()), "each client's check answered from the shared socket"

    expected_drops: Counter[str] = Counter()
    expected_media: Counter[int] = Counter()
    for n in range(200000):
        kind = rng.random()
        if kind < 0.8:
            i = rng.randrange(len(connections))
            shared.datagram_received(bytes([0x80, 0x6F]) + n.to_bytes(4, "big") + bytes([i]), clients[i])
            expected_media[i] += 1
        elif kind < 0.9:
            shared.datagram_received(rng.randbytes(rng.randint(0, 200)).lstrip(bytes(range(4))) or b"\xff",
                                     ("203.0.113.7", 40000 + rng.randrange(100)))
            expected_drops["not_stun"] += 1
        else:
            shared.datagram_received(aioice_request(f"gone{rng.randrange(10**6)}:x", rng), ("203.0.113.8", 40000))
            expected_drops["unknown_ufrag"] += 1
    assert stats.shared_dropped == expected_drops
    for i, connection in enumerate(connections):
        queue = seam.ice_datagram_queue(connection)
        # Nothing reads in this test: each queue keeps its newest MAX_QUEUED_DATAGRAMS, the rest are shed, counted.
        assert queue.qsize() == min(expected_media[i], MAX_QUEUED_DATAGRAMS)
        assert connection.overload_dropped == max(0, expected_media[i] - MAX_QUEUED_DATAGRAMS)
        while not queue.empty():
            item = queue.get_nowait()
            assert item is not None and item[0][-1] == i, "a packet reached another participant's connection"
    assert len(lines) <= 5, lines  # + one line for the overload shedding
    await asyncio.gather(*(connection.close() for connection in connections))
    assert shared.table.connections == 0 and shared.table.addresses == 0
    sock.close()


# --- attacks on the shared port (each failed before the demux bound only vouched addresses) --------


def signed_request(username: str, password: str | None, *, nominate: bool = False) -> bytes:
    """A Binding request as a client sends it; ``password`` None signs with a wrong key."""
    request = aioice.stun.Message(message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST)
    request.attributes["USERNAME"] = username
    request.attributes["PRIORITY"] = 1
    if nominate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity((password or "not-the-password").encode())
    request.add_fingerprint()
    return bytes(request)


async def shared_call(n: int) -> tuple[SharedUdpSocket, RecordingTransport, list[ShoalConnection], list[Address]]:
    """``n`` connections on one shared socket, each with a client whose check made it known."""
    stats = NetStats()
    notes = OnceLog(lambda line: None, time.monotonic)
    plan = GatherPlan(("127.0.0.1",), stats=stats, notes=notes)
    shared = SharedUdpSocket(bind_udp("127.0.0.1", 0), stats, notes)
    transport = RecordingTransport()
    shared.connection_made(transport)
    plan.shared["127.0.0.1"] = shared
    connections, clients = [], []
    for i in range(n):
        connection = ShoalConnection(shoal_plan=plan, ice_controlling=False)
        await connection.get_component_candidates(1, [])
        client = (f"203.0.113.{20 + i}", 50000 + i)
        shared.datagram_received(signed_request(f"{connection.local_username}:c{i}", connection.local_password), client)
        connections.append(connection)
        clients.append(client)
    return shared, transport, connections, clients


async def close_all(shared: SharedUdpSocket, connections: list[ShoalConnection]) -> None:
    for connection in connections:
        for pair in connection._check_list:
            if pair.task is not None:
                pair.task.cancel()
    await asyncio.gather(*(connection.close() for connection in connections))
    shared.sock.close()


async def test_forged_checks_naming_a_live_ufrag_neither_bind_nor_evict() -> None:
    """Someone who saw a victim's ufrag (it travels in clear) sends requests with a wrong
    MESSAGE-INTEGRITY from many ports: each is refused (401), none binds, and the victim's
    media keeps reaching its connection."""
    shared, transport, [victim], [client] = await shared_call(1)
    before = shared.table.addresses_of(shared.table.owner_of(client))  # type: ignore[arg-type]
    for port in range(40):
        shared.datagram_received(signed_request(f"{victim.local_username}:c0", None), ("198.51.100.66", 50000 + port))
    assert shared.table.addresses_of(shared.table.owner_of(client)) == before == [client]  # type: ignore[arg-type]
    assert shared.table.owner_of(("198.51.100.66", 50000)) is None
    assert sum(1 for data, addr in transport.sent if addr[0] == "198.51.100.66" and data[:2] == b"\x01\x11") == 40
    shared.datagram_received(bytes([0x80, 0x6F]) + bytes(20), client)
    assert victim._queue.qsize() == 1
    await close_all(shared, [victim])


async def test_a_spoofed_source_address_cannot_move_another_clients_media() -> None:
    """An attacker's own valid check, sent with the victim's address as its source, does not
    move the victim's address to the attacker's connection."""
    shared, _, [victim, attacker], [victim_client, _] = await shared_call(2)
    shared.datagram_received(signed_request(f"{attacker.local_username}:c1", attacker.local_password), victim_client)
    assert shared.table.refused_moves == 1
    shared.datagram_received(bytes([0x80, 0x6F]) + bytes(20), victim_client)
    assert victim._queue.qsize() == 1 and attacker._queue.qsize() == 0
    await close_all(shared, [victim, attacker])


async def test_media_never_goes_to_an_address_whose_check_has_not_succeeded() -> None:
    """A client's authenticated, nominating request from a new source address (one it may
    have made up) does not redirect the server's media there before the server's own check
    of that address succeeds; until then media keeps going to the selected address."""
    shared, transport, [connection], [client] = await shared_call(1)
    connection.remote_username, connection.remote_password = "c0", "clientpasswordclientpw"
    remote = aioice.Candidate("f", 1, "udp", 100, client[0], client[1], "host")
    connection._remote_candidates.append(remote)
    pair = aioice.ice.CandidatePair(connection._protocols[0], remote)
    pair.state = aioice.ice.CandidatePair.State.SUCCEEDED
    pair.nominated = True
    connection._check_list.append(pair)
    connection.check_complete(pair)
    connection._early_checks_done = True  # as once connect() runs: checks are handled, not queued
    assert connection._nominated[1] is pair

    elsewhere = ("198.51.100.99", 9)
    shared.datagram_received(
        signed_request(f"{connection.local_username}:c0", connection.local_password, nominate=True), elsewhere
    )
    assert connection._nominated[1] is pair
    transport.sent.clear()
    await connection.send(b"\x80" + b"media" * 10)
    assert [addr for data, addr in transport.sent if data[0] == 0x80] == [client]
    await close_all(shared, [connection])
