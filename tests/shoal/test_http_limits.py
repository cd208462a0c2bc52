"""HTTP limits (issue 10, hole 3): no single request, header or idle connection can stall or bloat the server.

Raw sockets against a real server: a request head over the limit gets 431 before the
server has read much of it, a body over the limit gets 413 and creates nothing, a slow
("slowloris") or silent client is closed after the header timeout, an idle keep-alive
connection after the keep-alive timeout.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.agent_client import create_room, rest
from tests.support.server import ServerProcess, start_server

HEADER_LIMIT = 32 * 1024  # the default --http-max-header-bytes
BODY_LIMIT = 1 << 20  # the default --http-max-body-bytes
JSON = {"content-type": "application/json"}


def open_socket(server: ServerProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def readable(sock: socket.socket, timeout: float = 0.0) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def read_response(sock: socket.socket, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one response on ``sock`` (read until the server closes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), f"not an HTTP response: {data[:200]!r}"
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def wait_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it stays open)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {timeout} s")
    return data


def refused(server: ServerProcess) -> dict[str, int]:
    """Refusals per cause, as the operator sees them (none at all on a server without the endpoint)."""
    with rest(server) as client:
        response = client.get("/limits/stats")
    counts: dict[str, int] = response.json()["refused"] if response.status_code == 200 else {}
    return counts


@pytest.fixture
def health_prober(server: ServerProcess) -> Iterator[list[int]]:
    """Probes /health on other connections for as long as the test runs; yields the status codes."""
    statuses: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            try:
                statuses.append(httpx.get(f"{server.url}/health", timeout=10).status_code)
            except httpx.HTTPError:
                statuses.append(0)
            time.sleep(0.05)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    yield statuses
    stop.set()
    thread.join()


def test_a_1mb_request_header_gets_431_and_health_stays_responsive(
    server: ServerProcess, health_prober: list[int]
) -> None:
    before = refused(server).get("http.header_bytes", 0)
    sock = open_socket(server)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    try:
        sock.sendall(request)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading; what it answered is still there
    status, headers, body = read_response(sock)
    sock.close()
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert "request head larger than 32768 bytes" in json.loads(body)["errors"]
    assert refused(server)["http.header_bytes"] == before + 1
    time.sleep(0.3)
    assert health_prober and set(health_prober) == {200}


def test_an_endless_header_is_refused_after_reading_little_of_it(server: ServerProcess) -> None:
    """The 200 MB header attack: the answer comes while the client has sent a few hundred KiB."""
    sock = open_socket(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    piece = b"a" * 16384
    while not readable(sock) and sent < 64 << 20:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
        if sent % (1 << 20) == 0:
            readable(sock, 0.2)  # give a stalled server a chance to show it was merely slow
    status, _, _ = read_response(sock)
    sock.close()
    assert status == 431
    # The kernel's socket buffers hold a few MiB; the server read only 32 KiB plus one read of it.
    assert sent < 16 << 20, f"the server let the client send {sent >> 20} MiB of one header"


def padded_peer_body(size: int) -> bytes:
    """A valid JSON peer body of ``size`` bytes (whitespace padding): only its size is wrong."""
    core = json.dumps({"type": "agent"}).encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_a_body_over_the_limit_gets_413_and_creates_nothing(server: ServerProcess) -> None:
    room = create_room(server)
    before = refused(server).get("http.body_bytes", 0)
    with rest(server) as client:
        small = client.post(f"/room/{room}/peer", content=padded_peer_body(BODY_LIMIT - 100), headers=JSON)
        assert small.status_code == 201, small.text  # the same body, within the limit, is fine
        client.delete(f"/room/{room}/peer/{small.json()['data']['peer']['id']}")
        response = client.post(f"/room/{room}/peer", content=padded_peer_body(BODY_LIMIT + 1), headers=JSON)
        assert response.status_code == 413
        assert response.json() == {"errors": f"request body larger than {BODY_LIMIT} bytes"}
        assert client.get(f"/room/{room}").json()["data"]["peers"] == []
    assert refused(server)["http.body_bytes"] == before + 1


def test_a_chunked_body_over_the_limit_gets_413_while_it_streams(server: ServerProcess) -> None:
    room = create_room(server)
    sock = open_socket(server)
    sock.sendall(
        f"POST /room/{room}/peer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    body = padded_peer_body(64 << 20)  # would be 64 MiB, were it read
    sent = 0
    piece = 65536
    while not readable(sock) and sent < len(body):
        chunk = body[sent : sent + piece]
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        readable(sock, 0.005)
    status, _, answer = read_response(sock)
    sock.close()
    assert status == 413, answer
    assert json.loads(answer) == {"errors": f"request body larger than {BODY_LIMIT} bytes"}
    assert sent < 16 << 20
    with rest(server) as client:
        assert client.get(f"/room/{room}").json()["data"]["peers"] == []


def test_a_slowloris_client_is_closed_after_the_header_timeout(server: ServerProcess) -> None:
    """One header byte every 0.2 s: never idle, never done — closed ~10 s (the default) after it began."""
    sock = open_socket(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    answer = b""
    while time.monotonic() - started < 60:
        if readable(sock, 0.2):
            answer = wait_closed(sock, 10)
            break
        try:
            sock.send(b"a")
        except (BrokenPipeError, ConnectionResetError):
            break
    else:
        pytest.fail("a client sending one header byte every 0.2 s was never closed")
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert b"request headers not complete within 10 s" in answer


def test_a_connection_that_never_sends_is_closed(server: ServerProcess) -> None:
    sock = open_socket(server)
    answer = wait_closed(sock, 60)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_an_idle_keepalive_connection_is_closed(server: ServerProcess) -> None:
    """(uvicorn already did this; shoal makes it an option, ``--http-keepalive-timeout``, default 5 s.)"""
    sock = open_socket(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b'{"status":"ok"}' not in first:
        first += sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert wait_closed(sock, 60) == b""
    sock.close()


def limits(server: ServerProcess) -> dict[str, Any]:
    with rest(server) as client:
        data: dict[str, Any] = client.get("/limits/stats").json()["limits"]
        return data


def test_the_limits_are_visible_to_the_operator(server: ServerProcess) -> None:
    configured = limits(server)
    assert configured["http_max_header_bytes"] == HEADER_LIMIT
    assert configured["http_max_body_bytes"] == BODY_LIMIT


def test_unparsable_requests_get_a_json_400_and_one_log_line() -> None:
    """An unknown method or bytes that are not HTTP: 400 ``{"errors"}`` each, one counted cause in the log."""
    own = start_server()
    try:
        answers = []
        for request in (b"BREW /pot HTTP/1.1\r\nhost: x\r\n\r\n", b"\x16\x03\x01\x02\x00garbage\r\n\r\n") * 10:
            sock = open_socket(own)
            sock.sendall(request)
            answers.append(read_response(sock))
            sock.close()
        for status, headers, body in answers:
            assert status == 400
            assert headers["content-type"] == "application/json"
            assert json.loads(body) == {"errors": "malformed HTTP request"}
        # Malformed and over the head limit in one read, alone or after a good request: answered
        # once, never a second answer written after sending was shut down (the fuzz run's only error).
        pad = b"a" * 70000
        for request in (
            b"BREW /pot HTTP/1.1\r\nx-pad: " + pad + b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nhost: x\r\n\x00bad: " + pad,
            b"\x16\x03\x01" + bytes(70000),
            b"GET /health HTTP/1.1\r\nhost: x\r\n\r\nBREW / HTTP/1.1\r\n" + pad,
        ):
            sock = open_socket(own)
            sock.sendall(request)
            wait_closed(sock, 15)
            sock.close()
        assert httpx.get(f"{own.url}/health").status_code == 200
        log = own.log_text()
        assert "Traceback" not in log and "Fatal error" not in log, log[-2000:]
        assert "Invalid HTTP request received." not in log
        assert log.count("malformed HTTP request") == 1, "one line per cause, not per request"
    finally:
        own.stop()
