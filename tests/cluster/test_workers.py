"""``shoal serve --workers N`` and ``scripts/cluster.sh``: N nodes on one machine, one cluster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.testing import free_port
from shoal.testing.redis import RedisProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited early with {process.returncode}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


def two_free_ports() -> int:
    while True:
        port = free_port()
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def spread_and_stop(
    process: subprocess.Popen[bytes], port: int, token: str, redis: RedisProcess, redis_outlives: bool = True
) -> None:
    urls = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
    for url in urls:
        wait_healthy(url, process)
    headers = {"authorization": f"Bearer {token}"}
    rooms = [httpx.post(f"{urls[0]}/room", headers=headers, json={}, timeout=10).json()["data"]["room"]["id"] for _ in range(6)]
    owners = {redis.client().get(f"shoal:room:{room}") for room in rooms}
    assert len(owners) == 2, f"6 rooms went to {owners}"
    listed = httpx.get(f"{urls[1]}/room", headers=headers, timeout=10).json()["data"]
    assert {room["id"] for room in listed} == set(rooms)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    if redis_outlives:  # scripts/cluster.sh stops its own Redis after the nodes
        assert redis.client().smembers("shoal:nodes") == set(), "the nodes did not deregister"


def test_workers_run_that_many_nodes_of_one_cluster(redis: RedisProcess) -> None:
    port, token = two_free_ports(), "workers-token"
    command = [sys.executable, "-m", "shoal", "serve", "--workers", "2", "--port", str(port), "--redis", redis.url,
               "--management-token", token, "--drain-timeout", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        spread_and_stop(process, port, token, redis)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_without_redis_is_refused_with_a_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shoal", "serve", "--workers", "2"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--workers needs --redis" in result.stderr


def test_cluster_script_starts_redis_and_the_nodes() -> None:
    port, redis_port, token = two_free_ports(), free_port(), "script-token"
    env = {**os.environ, "SHOAL_PORT": str(port), "SHOAL_REDIS_PORT": str(redis_port)}
    process = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "cluster.sh"), "2", "--management-token", token, "--drain-timeout", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        spread_and_stop(process, port, token, RedisProcess(port=redis_port), redis_outlives=False)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
