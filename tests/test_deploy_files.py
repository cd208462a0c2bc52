"""The Dockerfile and compose.yaml speak the server's real options.

A renamed option or environment variable would leave a deployment silently on defaults
(e.g. media on random ports behind a firewall that opens one); these tests fail instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from shoal.testing import free_port, start_server

ROOT = Path(__file__).resolve().parent.parent
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def serve_variables() -> set[str]:
    """Every SHOAL_* variable `shoal serve --help` documents."""
    out = subprocess.run([sys.executable, "-m", "shoal", "serve", "--help"], check=True, capture_output=True, text=True)
    return set(re.findall(r"\[(SHOAL_\w+)\]", out.stdout.replace("\n", " ").replace(" ", "")))


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def test_every_shoal_variable_they_set_is_a_serve_option() -> None:
    known = serve_variables()
    assert {"SHOAL_RTC_UDP_PORT", "SHOAL_RTC_PUBLIC_IP", "SHOAL_TURN_SECRET", "SHOAL_ICE_SERVERS"} <= known
    used = {k for k in dockerfile_env() if k.startswith("SHOAL_")}
    used |= set(compose()["services"]["shoal"]["environment"])
    assert used - known == set(), f"not options of shoal serve: {sorted(used - known)}"


def test_the_media_port_is_the_published_one() -> None:
    port = dockerfile_env()["SHOAL_RTC_UDP_PORT"]
    shoal = compose()["services"]["shoal"]
    assert shoal["environment"]["SHOAL_RTC_UDP_PORT"] == port
    assert f"{port}:{port}/udp" in shoal["ports"]
    assert f"EXPOSE 5002/tcp {port}/udp" in (ROOT / "Dockerfile").read_text()


def test_coturn_uses_the_secret_scheme_shoal_signs_for() -> None:
    conf = (ROOT / "deploy" / "turnserver.conf").read_text().splitlines()
    assert "use-auth-secret" in conf
    command = " ".join(compose()["services"]["coturn"]["command"])
    assert "--static-auth-secret=${TURN_SECRET}" in command
    assert "${TURN_SECRET" in compose()["services"]["shoal"]["environment"]["SHOAL_TURN_SECRET"]


def test_the_server_starts_with_composes_environment() -> None:
    """compose.yaml's environment, with loopback for the public address (traffic stays on this host)."""
    values = {"PUBLIC_IP": "127.0.0.1", "PUBLIC_URL": "https://media.example.com", "TURN_SECRET": "s3cret",
              "SHOAL_MANAGEMENT_TOKEN": "unused", "SHOAL_WEBHOOK_SECRET": ""}
    env = {
        name: VARIABLE.sub(lambda m: values[m.group(1)], str(value))
        for name, value in compose()["services"]["shoal"]["environment"].items()
    }
    port = free_port()  # the published 50000 may be taken on a test machine
    env["SHOAL_RTC_UDP_PORT"] = str(port)
    server = start_server(env=env)
    try:
        log = server.log_text()
        assert "Traceback" not in log, log
        assert f"one UDP port {port}" in log and "announced as 127.0.0.1" in log, log
    finally:
        server.stop()
