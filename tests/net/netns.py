"""Network namespaces for tests: hosts, segments, firewall rules, processes, and a teardown that always runs.

A :class:`NetLab` owns every namespace it creates. Their names carry a prefix, this process's
id and a counter (``shoalnet-<pid>-<n>-<role>``), so parallel test runs never collide and a run
can tell its own leftovers from a live run's: :func:`remove_stale` deletes namespaces whose
creating process is gone (a run that was killed), together with the processes still in them.

Only documentation addresses are used inside the namespaces (198.51.100.0/24 as the private
side, 203.0.113.0/24 as the public side). Nothing is added to the root namespace: no address,
no route, no interface. Veth pairs are created directly inside their namespaces and vanish with
them. The test process reaches a server in a namespace through :class:`TcpForwarder` (a socket
listening on the root namespace's loopback, whose connections are opened from inside the namespace).

Everything needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); :func:`check_privileges` says so clearly.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "shoalnet-"
NETNS_DIR = Path("/var/run/netns")
TOOLS = {"ip": "iproute2", "nft": "nftables", "conntrack": "conntrack", "turnserver": "coturn"}
INSTALL_HINT = "scripts/test.sh installs them (Debian: apt-get install iproute2 nftables conntrack coturn)"

_counter = itertools.count()
_open_labs: set[NetLab] = set()


class NetLabError(RuntimeError):
    """A namespace command failed; the message holds the command and its output."""


def run(args: Sequence[str], *, input_text: str | None = None, check: bool = True) -> str:
    """Run a command (ip, nft, ...) and return its stdout; NetLabError with its stderr on failure."""
    result = subprocess.run(list(args), input=input_text, capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise NetLabError(f"`{' '.join(args)}` failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
    return result.stdout


def missing_tools() -> list[str]:
    """The Debian packages whose commands are not installed."""
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


def check_privileges() -> str | None:
    """Why namespaces cannot be made here (None if they can): not root, tools missing, or refused."""
    if os.geteuid() != 0:
        return f"the network tests need root to create network namespaces (running as uid {os.geteuid()})"
    missing = missing_tools()
    if missing:
        return f"missing Debian packages {', '.join(missing)}; {INSTALL_HINT}"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        run(["ip", "netns", "add", probe])
        run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"])
    except NetLabError as exc:
        return f"creating a network namespace with nftables failed (root with CAP_NET_ADMIN and CAP_SYS_ADMIN is needed): {exc}"
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The creating process of a namespace named ``shoalnet-<pid>-...``."""
    parts = name.removeprefix(PREFIX).split("-")
    return int(parts[0]) if name.startswith(PREFIX) and parts and parts[0].isdigit() else None


def _kill_namespace_processes(name: str) -> None:
    """End, by pid, the processes still running in one of our namespaces (our servers, peers, coturn)."""
    pids = [int(p) for p in run(["ip", "netns", "pids", name], check=False).split() if p.isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if _pid_alive(pid)]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in alive if _pid_alive(pid) and not _is_zombie(pid)]
        if not alive:
            return


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def delete_namespace(name: str) -> None:
    _kill_namespace_processes(name)
    run(["ip", "netns", "del", name], check=False)


def our_namespaces() -> list[str]:
    """Every namespace with our prefix (of any run)."""
    names = [line.split()[0] for line in run(["ip", "netns", "list"], check=False).splitlines() if line.strip()]
    return [name for name in names if name.startswith(PREFIX)]


def remove_stale() -> list[str]:
    """Delete the namespaces of runs whose process has ended (killed or crashed); returns their names."""
    stale = [
        name for name in our_namespaces()
        if (pid := _owner_pid(name)) is not None and (not _pid_alive(pid) or _is_zombie(pid))
    ]
    for name in stale:
        delete_namespace(name)
    return stale


@dataclass(eq=False)
class Namespace:
    """One network namespace (a host or router of the test network)."""

    name: str
    role: str
    addresses: list[str] = field(default_factory=list)

    def ip(self, *args: str) -> str:
        return run(["ip", "-n", self.name, *args])

    def exec_args(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed so that they run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, check: bool = True) -> str:
        return run(self.exec_args(args), check=check)

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (nft -f syntax) into this namespace."""
        run(self.exec_args(["nft", "-f", "-"]), input_text=ruleset)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def udp_sockets(self) -> str:
        """``ss -uanp`` inside the namespace: every UDP socket with its owning process."""
        return self.run("ss", "-uanp")

    @property
    def address(self) -> str:
        """The first address given to this host (without prefix length)."""
        return self.addresses[0]


class NetLab:
    """Namespaces, segments and processes of one test; :meth:`close` removes them all (idempotent)."""

    def __init__(self, label: str = "lab") -> None:
        self.label = label
        self.id = f"{os.getpid()}-{next(_counter)}"
        self.namespaces: list[Namespace] = []
        self.processes: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
        self.cleanups: list[tuple[str, object]] = []
        self._links = itertools.count()
        _open_labs.add(self)

    # topology

    def host(self, role: str) -> Namespace:
        """A new namespace with loopback up (Chromium's page server and local sockets need it)."""
        name = f"{PREFIX}{self.id}-{role}"
        run(["ip", "netns", "add", name])
        ns = Namespace(name, role)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def router(self, role: str = "router") -> Namespace:
        """A namespace that forwards IPv4 between its segments."""
        ns = self.host(role)
        ns.sysctl("net.ipv4.ip_forward", "1")
        return ns

    def segment(self, router: Namespace, name: str, router_cidr: str, extra: Sequence[str] = ()) -> Segment:
        """An Ethernet segment: a bridge in ``router`` holding ``router_cidr`` (and ``extra`` /32s)."""
        bridge = f"br-{name}"[:15]
        router.ip("link", "add", bridge, "type", "bridge")
        router.ip("addr", "add", router_cidr, "dev", bridge)
        for cidr in extra:
            router.ip("addr", "add", cidr, "dev", bridge)
        router.ip("link", "set", bridge, "up")
        router.addresses.append(router_cidr.split("/")[0])
        return Segment(self, router, bridge, router_cidr.split("/")[0])

    # processes

    def popen(self, ns: Namespace, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process inside ``ns``; it is ended (by pid) when the lab closes."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(ns.exec_args(args), **kwargs)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def track(self, proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
        """End this process (started elsewhere, e.g. by asyncio) when the lab closes."""
        self.processes.append(proc)

    # teardown

    def close(self) -> None:
        """Stop our processes, then delete our namespaces (and with them their interfaces and rules)."""
        # Each step on its own: one that fails must not leave the rest of the lab behind.
        problems: list[BaseException] = []
        for proc in reversed(self.processes):
            try:
                _stop_process(proc)
            except Exception as exc:
                problems.append(exc)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            try:
                delete_namespace(ns.name)
            except Exception as exc:
                problems.append(exc)
        self.namespaces.clear()
        _open_labs.discard(self)
        if problems:
            raise problems[0]

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Segment:
    """A bridge in the router's namespace; hosts attach with a veth pair."""

    lab: NetLab
    router: Namespace
    bridge: str
    gateway: str

    def attach(self, ns: Namespace, cidr: str, *, default_route: bool = True) -> None:
        """Give ``ns`` an ``eth<n>`` with ``cidr`` on this segment (and a default route via the router)."""
        index = next(self.lab._links)
        eth = f"eth{sum(1 for line in ns.ip('-o', 'link').splitlines() if ': eth' in line)}"
        port = f"p{index}-{ns.role}"[:15]
        # Both ends are created directly in their namespaces: nothing appears in the root namespace.
        run(["ip", "link", "add", eth, "netns", ns.name, "type", "veth", "peer", "name", port, "netns", self.router.name])
        self.router.ip("link", "set", port, "master", self.bridge)
        self.router.ip("link", "set", port, "up")
        ns.ip("addr", "add", cidr, "dev", eth)
        ns.ip("link", "set", eth, "up")
        if default_route:
            ns.ip("route", "add", "default", "via", self.gateway)
        ns.addresses.append(cidr.split("/")[0])


def _stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class TcpForwarder:
    """``127.0.0.1:<port>`` in the root namespace, forwarded to ``target`` as seen from inside ``ns``.

    The listening socket is made here, in the root namespace, and handed to a small process
    (``forward.py``) running in ``ns``: sockets keep the namespace they were created in, so that
    process accepts on the root namespace's loopback and connects from inside ``ns``. The test
    process thus reaches a server's REST API and agent socket without any address or route in
    the root namespace.
    """

    def __init__(self, lab: NetLab, ns: Namespace, target_host: str, target_port: int) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port: int = self.listener.getsockname()[1]
        fd = self.listener.fileno()
        script = Path(__file__).with_name("forward.py")
        self.process = lab.popen(
            ns, [sys.executable, str(script), str(fd), target_host, str(target_port)], pass_fds=[fd]
        )
        self.listener.close()  # the child holds it now

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@atexit.register
def _close_open_labs() -> None:
    """A run that ends without its fixtures' teardown (e.g. an interrupt) still removes its namespaces."""
    for lab in list(_open_labs):
        with contextlib.suppress(Exception):
            lab.close()
