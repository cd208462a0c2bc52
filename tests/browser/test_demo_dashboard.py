"""``/demo`` and ``/dashboard`` in headless Chromium, against a real server started with ``--demo``.

* /demo: the page (official ts-client, bundled by web/build.mjs) makes a room with the parrot
  agent running in the server, joins it with Chromium's fake microphone (440 Hz for 1 s, then
  3 s of silence, looped), and hears the parrot repeat it: 440 Hz, loud, in the parrot's track
  (the page's own microphone is not played back to it). The parrot's state reaches the page.
* /dashboard, during that call: asks for the management token, then shows the room, its two
  peers (the page and the parrot) and the page's microphone track with a level that moves;
  a wrong token is refused with a message.
* Screenshots of both pages are saved in test-artifacts/ and checked to be more than one colour.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.testing import start_server
from shoal.testing.server import ServerProcess, stop_process
from tests.browser.harness import write_talk_wav

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DRIVER = Path(__file__).resolve().parent / "open_url.mjs"


class OpenPage:
    """One page in its own headless Chromium (tests/browser/open_url.mjs), driven by JSON commands."""

    def __init__(self, url: str, wav: Path | None = None) -> None:
        args = ["node", str(DRIVER), "--url", url, *(["--wav", str(wav)] if wav else [])]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.process.stderr or []), daemon=True).start()
        self._wait(lambda: any(line.get("type") == "ready" for line in self._lines), 60, "the page to load")

    def _read(self) -> None:
        for line in self.process.stdout or []:
            self._lines.append(json.loads(line))

    def _wait(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; browser stderr: {''.join(self._stderr)[-3000:]}")

    def command(self, op: str, **fields: Any) -> Any:
        self._next += 1
        ident = self._next
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": ident, "op": op, **fields}) + "\n")
        self.process.stdin.flush()
        self._wait(lambda: any(line.get("id") == ident for line in self._lines), 30, op)
        answer = next(line for line in self._lines if line.get("id") == ident)
        assert answer["ok"], f"{op} failed: {answer.get('error')}"
        return answer["value"]

    def eval(self, expr: str) -> Any:
        return self.command("eval", expr=expr)

    def until(self, expr: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expr)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what} ({expr}); browser stderr: {''.join(self._stderr)[-3000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("stop")
            except AssertionError:
                pass
        stop_process(self.process)


def png_colours(path: Path) -> int:
    """How many distinct pixel values a PNG screenshot holds (decoded with zlib; 8-bit RGB or RGBA)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, width, channels = 8, b"", 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, depth, colour = int.from_bytes(body[:4], "big"), body[8], body[9]
            assert depth == 8 and colour in (2, 6), f"unexpected PNG format {depth}/{colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    previous = bytearray(stride - 1)
    colours: set[bytes] = set()
    for start in range(0, len(raw), stride):
        kind, line = raw[start], bytearray(raw[start + 1 : start + stride])
        for i in range(len(line)):  # undo the row filter (PNG spec, section 9)
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(bytes(line[i : i + channels]) for i in range(0, len(line), channels * 7))  # every 7th pixel
        previous = line
    return len(colours)


@pytest.fixture(scope="module")
def demo_server() -> Any:
    subprocess.run(["node", str(ROOT / "web" / "build.mjs")], check=True, capture_output=True)
    server = start_server(["--demo"])
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(240)
def test_a_person_talks_to_the_parrot_and_the_dashboard_shows_the_call(demo_server: ServerProcess, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    wav = write_talk_wav(tmp_path / "talk.wav", 440, talk_s=1.0, pause_s=3.0)
    demo = OpenPage(f"{demo_server.url}/demo/", wav)
    dashboard: OpenPage | None = None
    try:
        demo.until("window.demo.status.startsWith('in the room')", 30, "the page to join")
        room = demo.eval("window.demo.room")
        reply = demo.until(
            "Object.values(window.demo.remote).flatMap(t => t.heard).find(r => r.dbfs > -30 && Math.abs(r.hz - 440) < 30)",
            40, "the parrot's 440 Hz reply",
        )
        assert reply["dbfs"] > -30
        # The page asks the parrot's state every 200 ms: it may hear the reply before it reads that.
        demo.until("window.demo.parrot?.events.some(e => e.event === 'repeating')", 5, "the parrot's 'repeating'")
        assert demo.eval("window.demo.parrot.room_id") == room
        assert not demo.eval("window.demo.errors"), demo.eval("window.demo.errors")
        demo_png = Path(demo.command("screenshot", path=str(ARTIFACTS / "demo.png")))
        assert png_colours(demo_png) > 20, "the /demo screenshot is blank"

        dashboard = OpenPage(f"{demo_server.url}/dashboard/")
        dashboard.until("window.dashboard.status === 'login'", 10, "the token form")
        dashboard.command("fill", selector="#token", text="not-the-token")
        dashboard.command("click", selector="#save")
        dashboard.until("document.getElementById('error').textContent.includes('refused')", 10, "a refusal")
        dashboard.command("fill", selector="#token", text=demo_server.token)
        dashboard.command("click", selector="#save")
        dashboard.until(f"!!document.querySelector('[data-room-id=\"{room}\"]')", 10, "the demo's room")
        peers = dashboard.until(
            f"document.querySelectorAll('[data-room-id=\"{room}\"] tr.peer').length >= 2 && "
            f"[...document.querySelectorAll('[data-room-id=\"{room}\"] tr.peer td:nth-child(2)')].map(td => td.textContent)",
            15, "the page and the parrot as peers",
        )
        assert sorted(peers) == ["agent", "webrtc"]
        levels = set()
        for _ in range(40):
            level = dashboard.eval(f"document.querySelector('[data-room-id=\"{room}\"] .track[data-level]')?.getAttribute('data-level')")
            if level is not None:
                levels.add(float(level))
            time.sleep(0.25)
        assert len(levels) >= 3, f"the microphone's level did not move: {levels}"
        assert max(levels) > -40, f"the microphone never sounded loud: {levels}"
        assert dashboard.eval(f"document.querySelector('[data-room-id=\"{room}\"] tr.peer td:nth-child(5)').textContent").startswith("connected")
        dashboard_png = Path(dashboard.command("screenshot", path=str(ARTIFACTS / "dashboard.png")))
        assert png_colours(dashboard_png) > 20, "the /dashboard screenshot is blank"
        print(f"screenshots: {demo_png} {dashboard_png}")
    finally:
        demo.close()
        if dashboard is not None:
            dashboard.close()


def test_the_dashboard_makes_a_peer_token_and_a_join_link(demo_server: ServerProcess) -> None:
    room = httpx.post(f"{demo_server.url}/room", json={}, headers={"authorization": f"Bearer {demo_server.token}"}).json()["data"]["room"]["id"]
    page = OpenPage(f"{demo_server.url}/dashboard/")
    try:
        page.command("fill", selector="#token", text=demo_server.token)
        page.command("click", selector="#save")
        page.until(f"!!document.querySelector('[data-room-id=\"{room}\"] .create-peer')", 10, "the room")
        page.command("click", selector=f"[data-room-id=\"{room}\"] .create-peer")
        link = page.until(f"document.querySelector('[data-room-id=\"{room}\"] .join-link')?.href", 10, "a join link")
        token = page.eval(f"document.querySelector('[data-room-id=\"{room}\"] .peer-token').textContent")
        assert link == f"{demo_server.url}/demo/?room={room}&token={token}"
        peers = httpx.get(f"{demo_server.url}/room/{room}", headers={"authorization": f"Bearer {demo_server.token}"}).json()["data"]["peers"]
        assert [p["type"] for p in peers] == ["webrtc"]
    finally:
        page.close()


def test_the_pages_data_needs_the_token_and_the_demo_needs_its_flag(demo_server: ServerProcess) -> None:
    assert httpx.get(f"{demo_server.url}/dashboard/api/snapshot").status_code == 401
    snapshot = httpx.get(f"{demo_server.url}/dashboard/api/snapshot", headers={"authorization": f"Bearer {demo_server.token}"})
    assert snapshot.status_code == 200 and "forwarding" in snapshot.json()
    assert httpx.get(f"{demo_server.url}/dashboard/").status_code == 200
    plain = start_server()
    try:
        refused = httpx.post(f"{plain.url}/demo/api/session")
        assert refused.status_code == 404 and "--demo" in refused.json()["errors"]
    finally:
        plain.stop()


def test_a_demo_session_whose_page_never_comes_ends_and_its_room_is_deleted() -> None:
    server = start_server(["--demo", "--demo-idle-seconds", "1"])
    try:
        started = httpx.post(f"{server.url}/demo/api/session")
        assert started.status_code == 201, started.text
        room = started.json()["room_id"]
        auth = {"authorization": f"Bearer {server.token}"}
        peers = httpx.get(f"{server.url}/room/{room}", headers=auth).json()["data"]["peers"]
        assert "webrtc" in [p["type"] for p in peers]  # the page's peer (the parrot's agent joins next)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and httpx.get(f"{server.url}/room/{room}", headers=auth).status_code != 404:
            time.sleep(0.2)
        assert httpx.get(f"{server.url}/room/{room}", headers=auth).status_code == 404, "the idle demo room was kept"
        assert httpx.get(f"{server.url}/demo/api/session/{room}").status_code == 404
        assert "demo session in room" in server.log_text() and "ended" in server.log_text()
    finally:
        server.stop()
