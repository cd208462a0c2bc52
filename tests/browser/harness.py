"""Run the ts-client test page in headless Chromium and follow its state from Python.

``run_page.mjs`` (Node + playwright-core) serves the bundled page, opens it in Debian's
Chromium with a fake microphone that plays a WAV file, and prints the page's ``window.shoal``
state as JSON lines. :class:`BrowserPage` starts that driver, reads its lines in a thread and
offers ``latest()``, ``wait_until()`` / ``wait_for()`` (async) and ``stop()``; every failure
message carries :meth:`BrowserPage.report`, a readable dump of what the page saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
import wave
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoal.testing.server import stop_process

BROWSER_DIR = Path(__file__).resolve().parent
OFFICIAL_PACKAGE = "@fishjam-cloud/ts-client"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = "run scripts/test.sh, which installs Chromium and runs `npm ci` in tests/browser"

State = dict[str, Any]
Predicate = Callable[[State], Any]


class PageFailure(AssertionError):
    """The page did not get where a test needed it; the message includes the page's report."""

    def __init__(self, message: str, page: BrowserPage | None = None) -> None:
        super().__init__(message)
        self.page = page  # whose report the message holds, if any


def ts_client_versions() -> list[str]:
    """The ts-client versions under test: every dependency in package.json that is the official client.

    ``"@fishjam-cloud/ts-client": "0.25.1"`` is the package itself; a second version is added
    as an npm alias, e.g. ``"ts-client-next": "npm:@fishjam-cloud/ts-client@0.26.0"``.
    """
    dependencies: dict[str, str] = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]
    versions = []
    for name, spec in dependencies.items():
        if name == OFFICIAL_PACKAGE:
            versions.append(spec)
        elif spec.startswith(f"npm:{OFFICIAL_PACKAGE}@"):
            versions.append(spec.removeprefix(f"npm:{OFFICIAL_PACKAGE}@"))
    return versions


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise PageFailure(f"node is not on PATH (Node.js >= 20 is needed); {SETUP_HINT}")
    return node


def check_browser_setup() -> None:
    """Fail (never skip) with instructions when Chromium or the npm packages are missing."""
    node_executable()
    if not Path(CHROMIUM).exists():
        raise PageFailure(f"no Chromium at {CHROMIUM}; {SETUP_HINT}")
    for package in (OFFICIAL_PACKAGE, "playwright-core", "esbuild"):
        if not (BROWSER_DIR / "node_modules" / package).is_dir():
            raise PageFailure(f"{BROWSER_DIR / 'node_modules' / package} is missing; {SETUP_HINT}")


def build_page() -> None:
    """Bundle page/main.js once per ts-client version into dist/<version>/ (esbuild, well under a second)."""
    check_browser_setup()
    result = subprocess.run(
        [node_executable(), "build.mjs"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise PageFailure(f"building the page failed:\n{result.stdout}\n{result.stderr}")


def write_tone_wav(path: Path, freq: float, seconds: float = 5.0, rate: int = 48000, level: float = 0.3) -> Path:
    """A mono 16-bit PCM WAV of a sine tone, for Chromium's fake microphone (which loops it).

    Choose ``seconds`` so the tone has a whole number of cycles; the loop is then seamless.
    """
    return write_talk_wav(path, freq, seconds, 0.0, rate, level)


def write_talk_wav(path: Path, freq: float, talk_s: float, pause_s: float, rate: int = 48000, level: float = 0.3) -> Path:
    """A WAV that "speaks" (a tone) for ``talk_s`` and is digitally silent for ``pause_s``; looped by Chromium."""
    t = np.arange(int(talk_s * rate)) / rate
    tone = (np.sin(2 * np.pi * freq * t) * level * 32767).astype("<i2")
    samples = np.concatenate([tone, np.zeros(int(pause_s * rate), dtype="<i2")])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


# --- reading the page's state --------------------------------------------------------------------


def remote_tracks(state: State, peer_id: str | None = None) -> dict[str, State]:
    """The page's remote tracks (track id -> entry), optionally only those of one peer."""
    tracks: dict[str, State] = state.get("remoteTracks") or {}
    return {tid: t for tid, t in tracks.items() if peer_id is None or t.get("peerId") == peer_id}


def steady_tone(measurements: list[State], hz: float, tolerance: float, min_rms: float, count: int) -> bool:
    """True when the last ``count`` measurements all show ``hz`` (± tolerance) at ``min_rms`` or louder."""
    recent = measurements[-count:]
    return len(recent) == count and all(
        m.get("hz") is not None and abs(m["hz"] - hz) <= tolerance and m.get("rms", 0) >= min_rms for m in recent
    )


def events_named(state: State, *names: str) -> list[State]:
    return [e for e in state.get("events") or [] if e.get("name") in names]


def recent_changes(video: State, count: int) -> int:
    """How many of a video's last ``count`` pixel samples differed from the sample before."""
    return sum(1 for sample in (video.get("videoSamples") or [])[-count:] if sample.get("changed"))


def rtp_streams(state: State, kind: str, direction: str) -> list[State]:
    """The page's RTP streams of one kind ("audio"/"video") and direction ("outbound"/"inbound")."""
    return [
        row
        for connection in (state.get("rtc") or {}).get("connections") or []
        for row in (connection.get("stats") or {}).get("rtp") or []
        if row.get("kind") == kind and row.get("type") == f"{direction}-rtp"
    ]


def video_summary(video: State) -> str:
    samples = video.get("videoSamples") or []
    return (
        f"video {video.get('videoWidth')}x{video.get('videoHeight')} readyState={video.get('readyState')} "
        f"playing={video.get('playing')} presentedFrames={video.get('presentedFrames')} "
        f"changes={video.get('changes')}/{video.get('samples')} samples, last={_compact(samples[-3:])}"
    )


def rtc_lines(state: State) -> list[str]:
    """Each RTCPeerConnection's states, SDP m-lines and RTP counters."""
    lines = []
    codecs = state.get("codecs") or {}
    if codecs:
        lines.append(f"video codecs: send {codecs.get('send')}")
    for connection in (state.get("rtc") or {}).get("connections") or []:
        lines.append(
            f"RTCPeerConnection #{connection.get('index')} (created at {connection.get('created')} ms): "
            f"{connection.get('connectionState')}; {'; '.join((connection.get('states') or [])[-6:])}"
        )
        for description in connection.get("descriptions") or []:
            lines.append(f"  {description.get('t'):>7} ms {description.get('side')} {description.get('type')}:")
            lines.extend(f"    {mline}" for mline in description.get("mlines") or [])
        for row in (connection.get("stats") or {}).get("rtp") or []:
            counters = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("type", "kind", "codec"))
            lines.append(f"  {row.get('type')} {row.get('kind')} {row.get('codec')}: {counters}")
        if connection.get("statsError"):
            lines.append(f"  getStats failed: {connection['statsError']}")
    return lines


class BrowserPage:
    """One run of ``run_page.mjs``: a headless Chromium tab with the test page.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        client_version: str,
        wav: Path,
        ws_url: str = "",
        token: str = "",
        mode: str = "join",
        name: str = "browser",
        camera: str = "",
        max_seconds: float = 300.0,
        launcher: Sequence[str] = (),
    ) -> None:
        """``camera``: also publish Chromium's fake camera, ``"WxH@FPS"`` or ``"1"`` (see page/main.js).

        ``launcher`` prefixes the driver's command, e.g. ``["ip", "netns", "exec", NS]`` to run the
        driver, its page server and Chromium inside a network namespace (tests/net).
        """
        self.name = name
        self.launcher = list(launcher)
        options = {
            "client": client_version,
            "ws": ws_url,
            "token": token,
            "wav": str(wav),
            "mode": mode,
            "name": name,
            "max-seconds": str(max_seconds),
            "chromium": CHROMIUM,
        }
        if camera:
            options["camera"] = camera
        # `--option=value`: a value that starts with "-" (peer tokens can) is then not taken for an option.
        self.args = ["run_page.mjs", *(f"--{option}={value}" for option, value in options.items())]
        self.process: subprocess.Popen[str] | None = None
        self.messages: list[State] = []  # every line but the state snapshots
        self.stderr: deque[str] = deque(maxlen=300)
        self.exit_reason: str | None = None
        self._state: State = {}
        self._elapsed = 0.0
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    # lifecycle

    def start(self) -> BrowserPage:
        self.process = subprocess.Popen(
            [*self.launcher, node_executable(), *self.args],
            cwd=BROWSER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._threads = [
            threading.Thread(target=self._read_stdout, name="page-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="page-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __enter__(self) -> BrowserPage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the driver to leave the room and close Chromium; kill it if it does not."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            self._command("stop")
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_process(process, timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        if process.stdin:
            try:
                process.stdin.close()
            except OSError:
                pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.exit_reason is None

    def snapshot(self) -> None:
        """Ask for a state line now (the driver also sends one whenever the state changes)."""
        self._command("snapshot")

    def _command(self, line: str) -> None:
        if self.process and self.process.stdin and self.process.poll() is None:
            try:
                self.process.stdin.write(line + "\n")
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def _read_stdout(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                self.stderr.append(f"[driver stdout, not JSON] {line.rstrip()}")
                continue
            with self._changed:
                if message.get("type") == "state":
                    self._state = message.get("state") or {}
                    self._elapsed = float(message.get("elapsed", 0.0))
                else:
                    self.messages.append(message)
                    if message.get("type") == "exit":
                        self.exit_reason = str(message.get("reason"))
                self._changed.notify_all()
        with self._changed:
            if self.exit_reason is None:
                self.exit_reason = f"driver output ended (exit status {self.process.wait()})"
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())

    # state

    def latest(self) -> State:
        """The last state the page reported (``window.shoal``); ``{}`` before the page has loaded."""
        with self._changed:
            return self._state

    def wait_until(self, predicate: Predicate, timeout: float, what: str, fail_if: Predicate | None = None) -> Any:
        """Block until ``predicate(state)`` is truthy and return that value.

        Raises :class:`PageFailure` on timeout, when the driver exits, or as soon as
        ``fail_if(state)`` returns a truthy reason.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                outcome = self._check(predicate, fail_if, what)
                if outcome is not None:
                    return outcome
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PageFailure(f"timed out after {timeout:.0f} s waiting for {what}\n\n{self.report()}", self)
                self._changed.wait(min(remaining, 0.5))

    async def wait_for(self, predicate: Predicate, timeout: float, what: str, fail_if: Predicate | None = None) -> Any:
        """:meth:`wait_until` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                outcome = self._check(predicate, fail_if, what)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise PageFailure(f"timed out after {timeout:.0f} s waiting for {what}\n\n{self.report()}", self)
            await asyncio.sleep(0.1)

    def _check(self, predicate: Predicate, fail_if: Predicate | None, what: str) -> Any:
        """The predicate's value if truthy; None to keep waiting; raises when waiting is pointless."""
        value = predicate(self._state)
        if value:
            return value
        if fail_if is not None:
            reason = fail_if(self._state)
            if reason:
                raise PageFailure(f"while waiting for {what}: {reason}\n\n{self.report()}", self)
        if self.exit_reason is not None:
            raise PageFailure(
                f"the page driver exited ({self.exit_reason}) while waiting for {what}\n\n{self.report()}", self
            )
        return None

    # reporting

    def report(self) -> str:
        """What the page saw, for failure messages: status, tracks, events, socket frames, errors, stderr."""
        state = self._state
        lines = [f"--- browser page {self.name!r} ({self.args[1]}) after {self._elapsed:.1f} s ---"]
        if not state:
            lines.append("no state from the page yet")
        else:
            lines.append(
                f"status={state.get('status')!r} peerId={state.get('peerId')!r} connect={state.get('connect')} "
                f"authError={state.get('authError')!r} joinError={state.get('joinError')!r} "
                f"audioContext={state.get('audioContext')}"
            )
            local = state.get("local") or {}
            lines.append(
                f"microphone: state={local.get('state')!r} trackId={local.get('trackId')!r} "
                f"error={local.get('error')!r} last={_last(local.get('measurements'), 1)}"
            )
            camera = state.get("camera")
            if camera:
                lines.append(
                    f"camera: state={camera.get('state')!r} trackId={camera.get('trackId')!r} "
                    f"error={camera.get('error')!r} settings={_compact(camera.get('settings'))}"
                )
                lines.append(f"  local preview: {video_summary(camera.get('preview') or {})}")
            for track_id, track in remote_tracks(state).items():
                info = {k: track.get(k) for k in ("peerId", "metadata", "kind", "added", "ready", "playing", "playError")}
                if track.get("kind") == "video":
                    lines.append(f"remote track {track_id}: {info} {video_summary(track)}")
                else:
                    lines.append(f"remote track {track_id}: {info} last={_last(track.get('measurements'), 3)}")
            lines.append(f"ts-client events ({state.get('eventCounts')}):")
            lines.extend(f"  {e['t']:>7} ms  {e['name']} {_compact(e.get('detail'))}" for e in (state.get("events") or [])[-40:])
            socket = state.get("socket") or {}
            frames = socket.get("frames") or []
            lines.append(f"socket frames (WebSockets created: {socket.get('created')}):")
            lines.extend(f"  {line}" for line in _frame_lines(frames)[-60:])
            if socket.get("framesDropped"):
                lines.append(f"  ... and {socket['framesDropped']} more frames not recorded")
            lines.extend(f"socket closed: {close}" for close in socket.get("closes") or [])
            if not socket.get("closes") and not socket.get("framesDropped"):
                lines.extend(_waiting_hint(frames, state.get("clock") or 0))
            lines.extend(rtc_lines(state))
            lines.extend(f"page error: {e}" for e in state.get("errors") or [])
        lines.extend(f"driver: {m}" for m in self.messages if m.get("type") != "started")
        if self.stderr:
            lines.append("driver stderr (page console errors and warnings):")
            lines.extend(f"  {line}" for line in list(self.stderr)[-40:])
        return "\n".join(lines)


def _last(measurements: list[State] | None, count: int) -> list[State]:
    return (measurements or [])[-count:]


def _compact(detail: Any) -> str:
    text = json.dumps(detail, separators=(",", ":"))
    return text if len(text) <= 300 else text[:297] + "..."


_PERIODIC_FRAMES = {"rtc_stats_report", "peer_media_event.candidate", "server_media_event.candidate"}


def _waiting_hint(frames: list[State], clock: int) -> list[str]:
    """Say so when the browser's last signaling message has gone unanswered for a while."""
    signaling = [f for f in frames if f.get("name") not in _PERIODIC_FRAMES]
    if not signaling or signaling[-1].get("dir") != "out":
        return []
    last = signaling[-1]
    waited = (clock - int(last.get("t") or 0)) / 1000
    if waited < 2:
        return []
    return [f"the server has not answered the browser's last message ({last.get('name')}) for {waited:.1f} s"]


def _frame_lines(frames: Iterable[State]) -> list[str]:
    """One line per frame, with runs of the same message collapsed (``... candidate (x7)``)."""
    runs: list[list[Any]] = []  # [key, first line, count]
    for frame in frames:
        key = (frame.get("dir", "?"), frame.get("name", "?"))
        if runs and runs[-1][0] == key:
            runs[-1][2] += 1
            continue
        extra = {k: v for k, v in frame.items() if k not in ("t", "dir", "name", "bytes")}
        arrow = {"out": "browser -> server", "in": "server -> browser", "open": "socket"}.get(key[0], key[0])
        runs.append([key, f"{frame.get('t'):>7} ms  {arrow}  {key[1]}{' ' + _compact(extra) if extra else ''}", 1])
    return [line if count == 1 else f"{line} (x{count})" for _, line, count in runs]
