"""Servers inside namespaces: ``shoal serve`` (reached from the test through a forwarder) and coturn."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.net.netns import Namespace, NetLab, TcpForwarder
from tests.support.server import ServerProcess

SHOAL_PORT = 5002
TURN_PORT = 3478
START_TIMEOUT_S = 60.0  # a busy 2-core machine can take a while to import aiortc and start uvicorn


@dataclass
class NetServer:
    """A shoal server in a namespace.

    ``server.url`` is the forwarder on the test's loopback (REST, agent sockets from the test);
    ``public_ws_url`` is what participants in other namespaces connect to.
    """

    server: ServerProcess
    namespace: Namespace
    public_ws_url: str

    def log_text(self) -> str:
        return self.server.log_text()

    def log_tail(self, lines: int = 80) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- shoal server log (last {len(tail)} lines) ---\n" + "\n".join(tail)


def start_shoal(
    lab: NetLab, ns: Namespace, *, public_host: str, extra_args: list[str] | None = None
) -> NetServer:
    """``shoal serve --host 0.0.0.0`` in ``ns``; waits until /health answers through the forwarder."""
    token = "test-" + secrets.token_hex(8)
    secret = "whsec-" + secrets.token_hex(8)
    log_path = Path(tempfile.mkstemp(prefix=f"shoal-{ns.role}-", suffix=".log")[1])
    public_url = f"http://{public_host}:{SHOAL_PORT}"
    cmd = [
        sys.executable, "-m", "shoal", "serve",
        "--host", "0.0.0.0", "--port", str(SHOAL_PORT), "--management-token", token,
        "--webhook-secret", secret, "--public-url", public_url,
        *(extra_args or []),
    ]
    with log_path.open("wb") as out:
        proc = lab.popen(ns, cmd, stdout=out, stderr=subprocess.STDOUT)
    forwarder = TcpForwarder(lab, ns, ns.address, SHOAL_PORT)
    server = ServerProcess(forwarder.url, token, secret, proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shoal exited early ({proc.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{forwarder.url}/health", timeout=2).status_code == 200:
                return NetServer(server, ns, public_url.replace("http", "ws", 1))
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"shoal did not become healthy in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")


@dataclass
class Coturn:
    """A coturn ``turnserver`` with TURN REST API credentials (``use-auth-secret``)."""

    process: subprocess.Popen[bytes]
    log_path: Path
    address: str
    secret: str

    @property
    def url(self) -> str:
        return f"turn:{self.address}:{TURN_PORT}?transport=udp"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- coturn log (last {len(tail)} lines) ---\n" + "\n".join(tail)


def start_coturn(lab: NetLab, ns: Namespace, *, secret: str, relay_to: list[str]) -> Coturn:
    """coturn on ``ns.address``:3478 (UDP and TCP), relaying only to the addresses in ``relay_to``.

    Whatever coturn's built-in peer defaults (they have changed between versions), every peer
    address is denied here except ``relay_to`` (the media server), as a TURN server in front of one
    service should be configured; so the test also shows that relaying to the server is enough.
    """
    workdir = Path(tempfile.mkdtemp(prefix="coturn-"))
    log_path = workdir / "turnserver.log"
    cmd = [
        "turnserver", "-n",  # no configuration file: everything is on this command line
        f"--listening-ip={ns.address}", f"--relay-ip={ns.address}", f"--listening-port={TURN_PORT}",
        "--min-port=49152", "--max-port=49407",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=shoal.test",
        "--fingerprint", "--no-tls", "--no-dtls", "--no-cli", "--no-multicast-peers",
        "--denied-peer-ip=0.0.0.0-255.255.255.255", *(f"--allowed-peer-ip={ip}" for ip in relay_to),
        f"--db={workdir / 'turndb'}", f"--pidfile={workdir / 'turnserver.pid'}",
        "--log-file=stdout", "--simple-log", "--verbose",
    ]
    with log_path.open("wb") as out:
        proc = lab.popen(ns, cmd, stdout=out, stderr=subprocess.STDOUT)
    coturn = Coturn(proc, log_path, ns.address, secret)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"turnserver exited ({proc.returncode}):\n{coturn.log_text()}")
        if f"{ns.address}:{TURN_PORT}" in ns.run("ss", "-uln"):
            return coturn
        time.sleep(0.2)
    raise RuntimeError(f"turnserver did not listen on {ns.address}:{TURN_PORT}:\n{coturn.log_text()}")
