"""A Pipecat transport for a Fishjam agent: room audio in, one audio track out.

Install with ``pip install 'shoal[pipecat]'``. It runs against Fishjam cloud and against
shoal; on shoal it also uses the server's two agent extensions (docs/protocol-extensions.md):

* **Playout events** time the bot's speech by what the server has actually played: the output
  keeps only ``playout_lead_secs`` of audio queued at the server (so an interruption has
  little to drop and Pipecat's view of "now" is the participants' view), and
  ``BotStoppedSpeakingFrame`` is held until the server's queue has run empty. Without them
  (Fishjam cloud) the same is done from the SDK's local pacing estimate.
* **Voice activity** (``FishjamParams.server_vad``): the server's speech/silence changes of
  the participants' audio become ``VADUserStartedSpeakingFrame``/``VADUserStoppedSpeakingFrame``,
  so a pipeline needs no VAD of its own. Elsewhere, put a ``VADProcessor`` after ``input()``.

An ``InterruptionFrame`` reaching the output interrupts the agent's track at the server, which
drops everything still queued.

Participants: with a management token the transport follows the room's notifications (and
lists who is already there at start); without one it sees a participant join when their
first audio arrives and never sees them leave.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from websockets.exceptions import ConnectionClosed

from fishjam._ws_notifier import FishjamNotifier
from fishjam.agent import (
    Agent,
    AgentSession,
    IncomingTrackData,
    IncomingVoiceActivity,
    OutgoingAudioTrackOptions,
    OutgoingTrack,
)
from fishjam.api._fishjam_client import FishjamClient
from fishjam.events import (
    ServerMessagePeerConnected,
    ServerMessagePeerCrashed,
    ServerMessagePeerDeleted,
    ServerMessagePeerDisconnected,
)

logger = logging.getLogger(__name__)

_PCM_RATES = (16000, 24000)
_SERVER_VAD_ONSET_S = 0.06  # shoal: speech after 3 loud 20 ms packets (docs/protocol-extensions.md)
_SERVER_VAD_HANGOVER_S = 0.5
_PLAYOUT_WAIT_SLACK_S = 1.0
"""How much longer than the queued audio BotStoppedSpeaking waits for the server's report."""


class FishjamParams(TransportParams):
    """Transport parameters; audio in and out are on by default.

    ``audio_in_sample_rate`` must be the rate the agent was created with
    (``AgentOutputOptions.audio_sample_rate``: the server sends participants' audio at it);
    ``audio_out_sample_rate`` is the agent track's rate, 16000 or 24000.
    """

    audio_in_enabled: bool = True
    audio_out_enabled: bool = True
    server_vad: bool = True
    """Ask the server for voice activity and push it as VAD frames (shoal only; elsewhere nothing arrives)."""
    playout_lead_secs: float = 0.1
    """How much audio the output lets queue at the server before a write waits."""
    track_metadata: dict[str, Any] | None = None
    """JSON metadata of the agent's audio track."""


class _FishjamConnection:
    """The agent socket, shared by the input and output processors: opened once, closed once."""

    def __init__(self, transport: FishjamTransport, agent: Agent, params: FishjamParams) -> None:
        self._transport = transport
        self._agent = agent
        self._params = params
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self.session: AgentSession | None = None
        self.track: OutgoingTrack | None = None
        self._receiver: asyncio.Task[None] | None = None
        self.input: FishjamInputTransport | None = None

    async def connect(self) -> AgentSession:
        async with self._lock:
            if self.session is not None:
                return self.session
            stack = AsyncExitStack()
            self.session = await stack.enter_async_context(
                self._agent.connect(playout_events=True, vad_events=self._params.server_vad)
            )
            self._stack = stack
            self._receiver = asyncio.create_task(self._receive(self.session), name=f"fishjam-agent-{self._agent.id}")
            logger.info(
                "agent %s connected to room %s (playout events: %s, voice activity: %s)",
                self._agent.id, self._agent.room_id, self.session.playout_events, self.session.vad_events,
            )
        await self._transport._connected()
        return self.session

    async def add_track(self, sample_rate: int, channels: int) -> OutgoingTrack:
        session = await self.connect()
        async with self._lock:
            if self.track is None:
                self.track = await session.add_track(
                    OutgoingAudioTrackOptions(
                        sample_rate=sample_rate, channels=channels, metadata=self._params.track_metadata
                    )
                )
            return self.track

    async def disconnect(self) -> None:
        async with self._lock:
            stack, self._stack = self._stack, None
            receiver, self._receiver = self._receiver, None
            if stack is None:
                return
            if receiver is not None and receiver is not asyncio.current_task():
                receiver.cancel()
            try:
                await stack.aclose()
            except ConnectionClosed:
                pass
            self.session = None
            self.track = None
        await self._transport._disconnected()

    async def _receive(self, session: AgentSession) -> None:
        try:
            async for message in session.receive():
                if isinstance(message, IncomingTrackData):
                    await self._transport._heard_from(message.peer_id)
                    if self.input is not None:
                        await self.input._audio(message.peer_id, message.data)
                elif isinstance(message, IncomingVoiceActivity):
                    await self._transport._voice_activity(message.peer_id, message.speech)
        except ConnectionClosed as exc:
            logger.warning("agent %s socket closed: %s", self._agent.id, exc)
        else:
            logger.info("agent %s socket closed by the server", self._agent.id)
        await self.disconnect()


class FishjamInputTransport(BaseInputTransport):
    """Participants' audio as ``UserAudioRawFrame`` (``user_id`` = peer id), and server VAD frames."""

    def __init__(self, connection: _FishjamConnection, params: FishjamParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._connection = connection
        self._fishjam_params = params
        connection.input = self
        self._speaking: set[str] = set()

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as Pipecat's own FrameProcessor.setup
        await super().setup(setup)
        await self._connection.connect()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._connection.disconnect()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._connection.disconnect()

    async def _audio(self, peer_id: str, pcm: bytes) -> None:
        frame = UserAudioRawFrame(
            audio=pcm, sample_rate=self.sample_rate, num_channels=self._params.audio_in_channels, user_id=peer_id
        )
        await self.push_audio_frame(frame)

    async def _voice_activity(self, peer_id: str, speech: bool) -> None:
        """Anyone speaking starts the user's speech; everyone silent again ends it."""
        if not self._fishjam_params.server_vad:
            return
        was_speaking = bool(self._speaking)
        if speech:
            self._speaking.add(peer_id)
        else:
            self._speaking.discard(peer_id)
        if self._speaking and not was_speaking:
            await self.push_frame(VADUserStartedSpeakingFrame(start_secs=_SERVER_VAD_ONSET_S))
        elif was_speaking and not self._speaking:
            await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=_SERVER_VAD_HANGOVER_S))


class FishjamOutputTransport(BaseOutputTransport):
    """The agent's audio track: paced by the server's playout, interrupted at the server."""

    def __init__(self, connection: _FishjamConnection, params: FishjamParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._connection = connection
        self._lead = params.playout_lead_secs

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as Pipecat's own FrameProcessor.setup
        await super().setup(setup)
        if self.sample_rate not in _PCM_RATES:
            raise ValueError(
                f"a Fishjam agent track plays 16-bit PCM at 16000 or 24000 Hz, not {self.sample_rate}: "
                "set audio_out_sample_rate"
            )
        await self._connection.connect()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self._connection.add_track(self.sample_rate, self._params.audio_out_channels)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)  # lets what is queued in Pipecat be written first
        track = self._connection.track
        if track is not None:
            await self._wait_for_playout(track)
        await self._connection.disconnect()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._connection.disconnect()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            track = self._connection.track
            if track is not None:
                try:
                    await track.interrupt()  # first: the server drops its queue while Pipecat drops its own
                except ConnectionClosed:
                    pass
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        track = self._connection.track
        if isinstance(frame, BotStoppedSpeakingFrame) and track is not None:
            await self._wait_for_playout(track)  # the bot stops when the participants stop hearing it
        await super().push_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        track = self._connection.track
        if track is None or not frame.audio:
            return False
        try:
            await track.send_chunk(frame.audio)
        except ConnectionClosed:
            return False
        ahead = track.queued_duration - self._lead
        if ahead > 0:
            await asyncio.sleep(ahead)
        return True

    async def _wait_for_playout(self, track: OutgoingTrack) -> None:
        timeout = track.queued_duration + _PLAYOUT_WAIT_SLACK_S
        try:
            await asyncio.wait_for(track.wait_for_playout(), timeout)
        except TimeoutError:
            logger.warning("track %s: no end-of-playout report within %.1f s; going on", track.id, timeout)


class FishjamTransport(BaseTransport):
    """A Pipecat transport over a Fishjam agent (``FishjamClient.create_agent``).

    Events (``@transport.event_handler(name)``): ``on_connected(transport)``,
    ``on_disconnected(transport)``, ``on_participant_joined(transport, peer_id)``,
    ``on_first_participant_joined(transport, peer_id)``,
    ``on_participant_left(transport, peer_id, reason)``, ``on_client_connected(transport, client)``
    and ``on_client_disconnected(transport, client)`` (client = ``{"id": peer_id}``), and
    ``on_participant_voice_activity(transport, peer_id, speech)`` (shoal).

    ``management_token`` (with ``fishjam_id``, the server's id or URL, default the agent's
    server) lets the transport follow the room's peer notifications.
    """

    def __init__(
        self,
        agent: Agent,
        params: FishjamParams | None = None,
        *,
        fishjam_id: str | None = None,
        management_token: str | None = None,
        name: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
    ) -> None:
        super().__init__(name=name, input_name=input_name, output_name=output_name)
        self._agent = agent
        self._params = params or FishjamParams()
        self._connection = _FishjamConnection(self, agent, self._params)
        self._fishjam_id = fishjam_id or agent._fishjam_url
        self._management_token = management_token
        self._notifier_task: asyncio.Task[None] | None = None
        self._input: FishjamInputTransport | None = None
        self._output: FishjamOutputTransport | None = None
        self.participants: set[str] = set()
        """Peers in the room, as far as the transport has seen."""
        self._first_joined = False
        for event in (
            "on_connected", "on_disconnected", "on_participant_joined", "on_first_participant_joined",
            "on_participant_left", "on_client_connected", "on_client_disconnected",
            "on_participant_voice_activity",
        ):
            self._register_event_handler(event)

    def input(self) -> FishjamInputTransport:
        if self._input is None:
            self._input = FishjamInputTransport(self._connection, self._params, name=self._input_name)
        return self._input

    def output(self) -> FishjamOutputTransport:
        if self._output is None:
            self._output = FishjamOutputTransport(self._connection, self._params, name=self._output_name)
        return self._output

    def get_client_id(self, client: Any) -> str:
        return str(client["id"])

    @property
    def agent(self) -> Agent:
        return self._agent

    @property
    def track(self) -> OutgoingTrack | None:
        """The agent's audio track, once the output has started."""
        return self._connection.track

    @property
    def server_playout_events(self) -> bool:
        """The server reports playout (shoal); otherwise playout is estimated locally."""
        session = self._connection.session
        return session is not None and session.playout_events

    async def _connected(self) -> None:
        if self._management_token is not None and self._notifier_task is None:
            self._notifier_task = asyncio.create_task(self._follow_room(self._management_token))
        await self._call_event_handler("on_connected")

    async def _disconnected(self) -> None:
        task, self._notifier_task = self._notifier_task, None
        if task is not None:
            task.cancel()
        await self._call_event_handler("on_disconnected")

    async def _follow_room(self, management_token: str) -> None:
        """Peers already in the room, then the room's peer notifications."""
        notifier = FishjamNotifier(self._fishjam_id, management_token)
        room_id = self._agent.room_id

        @notifier.on_server_notification
        async def _notification(notification: Any) -> None:
            if getattr(notification, "room_id", None) != room_id:
                return
            if isinstance(notification, ServerMessagePeerConnected):
                await self._joined(notification.peer_id)
            elif isinstance(notification, ServerMessagePeerDisconnected):
                await self._left(notification.peer_id, "disconnected")
            elif isinstance(notification, ServerMessagePeerCrashed):
                await self._left(notification.peer_id, f"crashed: {notification.reason}")
            elif isinstance(notification, ServerMessagePeerDeleted):
                await self._left(notification.peer_id, "deleted")

        listening = asyncio.create_task(notifier.connect())
        try:
            await notifier.wait_ready()
            client = FishjamClient(self._fishjam_id, management_token)
            room = await asyncio.to_thread(client.get_room, room_id)
            for peer in room.peers:
                if str(peer.status.value) == "connected":
                    await self._joined(peer.id)
            await listening
        except asyncio.CancelledError:
            listening.cancel()
            raise
        except Exception:
            logger.exception("room %s: following its notifications failed", room_id)
            listening.cancel()

    async def _heard_from(self, peer_id: str) -> None:
        if peer_id not in self.participants:
            await self._joined(peer_id)

    async def _joined(self, peer_id: str) -> None:
        if peer_id == self._agent.id or peer_id in self.participants:
            return
        self.participants.add(peer_id)
        await self._call_event_handler("on_participant_joined", peer_id)
        await self._call_event_handler("on_client_connected", {"id": peer_id})
        if not self._first_joined:
            self._first_joined = True
            await self._call_event_handler("on_first_participant_joined", peer_id)

    async def _left(self, peer_id: str, reason: str) -> None:
        if peer_id not in self.participants:
            return
        self.participants.discard(peer_id)
        if self._input is not None:
            await self._input._voice_activity(peer_id, False)
        await self._call_event_handler("on_participant_left", peer_id, reason)
        await self._call_event_handler("on_client_disconnected", {"id": peer_id})

    async def _voice_activity(self, peer_id: str, speech: bool) -> None:
        await self._call_event_handler("on_participant_voice_activity", peer_id, speech)
        if self._input is not None:
            await self._input._voice_activity(peer_id, speech)
