"""Test harness: start and stop a real ``shoal serve`` process on a free loopback port.

Used by shoal's own tests and benchmarks, and by anyone testing agents against shoal::

    from shoal.testing import start_server

    server = start_server()
    client = fishjam.FishjamClient(server.url, server.token)
    ...
    server.stop()
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    url: str
    """Base URL, usable as ``fishjam_id`` (for example ``http://127.0.0.1:5123``)."""
    token: str
    """Management token."""
    webhook_secret: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM a child process and wait for it; SIGKILL it if it has not exited within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    token: str | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Run ``python -m shoal serve`` on a free port and wait until /health answers.

    ``token`` (the management token) and the webhook secret in ``env`` let several servers
    act as one cluster's nodes; ``port`` fixes the port (a node restarted where it was).
    """
    port = port or free_port()
    token = token or "test-" + secrets.token_hex(8)
    secret = (env or {}).get("SHOAL_WEBHOOK_SECRET") or "whsec-" + secrets.token_hex(8)
    log_file = Path(tempfile.mkstemp(prefix="shoal-", suffix=".log")[1])
    full_env = {**os.environ, "SHOAL_WEBHOOK_SECRET": secret, **(env or {})}
    cmd = [
        sys.executable, "-m", "shoal", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--management-token", token,
        *(extra_args or []),
    ]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shoal exited early:\n{log_file.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return ServerProcess(url, token, secret, proc, log_file)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"shoal did not become healthy:\n{log_file.read_text()}")
