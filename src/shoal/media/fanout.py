"""TrackFanout: one per published track; converts once per output format.

Receivers ask for an output format: agents want ``TrackData`` messages with PCM at their
rate (``PcmOut``), WebRTC participants want Opus packets (``OpusOut``) of a track an agent
publishes, or the publisher's own RTP packets (``RtpOut``) of a track a participant
publishes — forwarded, never transcoded. Sinks are grouped by format; each 20 ms mono
frame is converted once per format — resampled and wrapped, or encoded to Opus — and the
same object is handed to every sink of that format. Subscribe and unsubscribe rebuild
immutable tuples, so delivery iterates a snapshot that nothing mutates.

A fan-out of a participant's track also carries the way back to its publisher
(``Upstream``): receivers that need a keyframe ask through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoal.media.opus import OPUS_RATE, OpusPacketizer
from shoal.media.pcm import Resampler, Samples

Sink = Callable[[Any], None]
"""Receives one converted frame (wire bytes or an Opus packet); must not block."""

Wrap = Callable[[bytes], bytes]
"""Turns PCM bytes of this track into the message an agent receives."""


@dataclass(frozen=True)
class PcmOut:
    """Wire-ready ``TrackData`` messages carrying mono s16le PCM at ``rate``."""

    rate: int


@dataclass(frozen=True)
class OpusOut:
    """Opus packets (``av.Packet``, 48 kHz, 20 ms) for WebRTC senders."""


@dataclass(frozen=True)
class RtpOut:
    """The publisher's RTP packets (``aiortc.rtp.RtpPacket``), as received, for forwarders."""


Output = PcmOut | OpusOut | RtpOut


class Upstream(Protocol):
    """The publisher of a forwarded track, as its receivers see it."""

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (rate-limited by the publisher's side)."""


class _Converter:
    """Turns a mono PCM frame into zero or more items of one output format."""

    def convert(self, frame: Samples, rate: int) -> list[Any]:
        raise NotImplementedError


class _RateAdapter:
    """Brings frames from whatever rate they come at to ``out_rate``; a resampler only when needed."""

    def __init__(self, out_rate: int) -> None:
        self.out_rate = out_rate
        self._resampler: Resampler | None = None

    def process(self, frame: Samples, rate: int) -> Samples:
        if rate == self.out_rate:
            return frame
        resampler = self._resampler
        if resampler is None or resampler.in_rate != rate:
            resampler = self._resampler = Resampler(rate, self.out_rate)
        return resampler.process(frame)


class _PcmConverter(_Converter):
    def __init__(self, rate: int, wrap: Wrap) -> None:
        self._adapter = _RateAdapter(rate)
        self._wrap = wrap

    def convert(self, frame: Samples, rate: int) -> list[Any]:
        pcm = self._adapter.process(frame, rate)
        if not len(pcm):
            return []
        return [self._wrap(pcm.astype("<i2", copy=False).tobytes())]


class _OpusConverter(_Converter):
    def __init__(self) -> None:
        self._adapter = _RateAdapter(OPUS_RATE)
        self._packetizer = OpusPacketizer()

    def convert(self, frame: Samples, rate: int) -> list[Any]:
        pcm = self._adapter.process(frame, rate)
        return self._packetizer.encode(pcm) if len(pcm) else []


Wanted = Callable[[], bool]
"""Whether a sink wants frames now (False: its receiver's media is paused under overload)."""


@dataclass
class _Branch:
    converter: _Converter
    sinks: dict[str, Sink] = field(default_factory=dict)
    wanted: dict[str, Wanted | None] = field(default_factory=dict)
    snapshot: tuple[Sink, ...] = ()
    gates: tuple[Wanted, ...] | None = None
    """Every sink's ``wanted``, or None if some sink always wants frames."""

    def rebuild(self) -> None:
        self.snapshot = tuple(self.sinks.values())
        gates = tuple(self.wanted.values())
        self.gates = None if any(g is None for g in gates) else tuple(g for g in gates if g is not None)


class _Forwarding(_Converter):
    """The RTP branch: packets are delivered as they are (``deliver_rtp``), never converted."""

    def convert(self, frame: Samples, rate: int) -> list[Any]:
        return []


class TrackFanout:
    def __init__(
        self,
        source_rate: int,
        wrap: Wrap,
        upstream: Upstream | None = None,
        on_withheld: Callable[[], None] | None = None,
    ) -> None:
        self.source_rate = source_rate
        self._on_withheld = on_withheld
        """Called for each frame of a format not converted because every sink of it was paused."""
        self._wrap = wrap
        self.upstream = upstream
        self.snapshots: Any = None
        """Still images of the track (a ``VideoSnapshots`` for a participant's video), else None."""
        self._branches: dict[Output, _Branch] = {}
        self._output_of: dict[str, Output] = {}
        self._rtp: tuple[Sink, ...] = ()
        self._needs_pcm = False
        self._preferred_rate = source_rate
        self.delivered_messages = 0

    @property
    def forwards_rtp(self) -> bool:
        """The track comes from a WebRTC publisher: receivers take its RTP as it is."""
        return self.upstream is not None

    @property
    def forwarding(self) -> bool:
        """Some WebRTC receiver takes the publisher's RTP packets as they are."""
        return bool(self._rtp)

    @property
    def needs_pcm(self) -> bool:
        """Some receiver wants decoded audio (an agent, or Opus re-encoding); asked once per packet."""
        return self._needs_pcm

    @property
    def preferred_rate(self) -> int:
        """The rate to decode at: the one rate every PCM receiver takes, else ``source_rate``.

        A participant's Opus is decoded straight at the agents' rate when they agree (libopus
        synthesises at 8–48 kHz), so no resampler runs; mixed rates decode at ``source_rate``.
        """
        return self._preferred_rate

    def request_keyframe(self) -> None:
        if self.upstream is not None:
            self.upstream.request_keyframe()

    def deliver_rtp(self, packet: Any) -> None:
        """Hand a publisher's RTP packet to every forwarder (each rewrites it for its receiver)."""
        for sink in self._rtp:
            sink(packet)

    @property
    def receiver_ids(self) -> set[str]:
        return set(self._output_of)

    def attach(self, receiver_id: str, output: Output, sink: Sink, wanted: Wanted | None = None) -> None:
        """Deliver this track to ``sink`` in format ``output`` (idempotent per format).

        ``wanted``: asked per frame; while it is False for every sink of a format, frames of
        that format are not even converted (a paused participant's Opus is not encoded).
        """
        if self._output_of.get(receiver_id) == output:
            return
        self.detach(receiver_id)
        branch = self._branches.get(output)
        if branch is None:
            branch = self._branches[output] = _Branch(self._converter(output))
        branch.sinks[receiver_id] = sink
        branch.wanted[receiver_id] = wanted
        branch.rebuild()
        self._output_of[receiver_id] = output
        self._rebuild_rtp()

    def detach(self, receiver_id: str) -> None:
        output = self._output_of.pop(receiver_id, None)
        if output is None:
            return
        branch = self._branches[output]
        branch.sinks.pop(receiver_id, None)
        branch.wanted.pop(receiver_id, None)
        if branch.sinks:
            branch.rebuild()
        else:
            del self._branches[output]
        self._rebuild_rtp()

    def _rebuild_rtp(self) -> None:
        branch = self._branches.get(RtpOut())
        self._rtp = branch.snapshot if branch is not None else ()
        converted = [output for output in self._branches if not isinstance(output, RtpOut)]
        self._needs_pcm = bool(converted)
        rates = {output.rate for output in converted if isinstance(output, PcmOut)}
        only_pcm = all(isinstance(output, PcmOut) for output in converted)
        self._preferred_rate = rates.pop() if len(rates) == 1 and only_pcm else self.source_rate

    def deliver(self, frame: Samples, rate: int | None = None) -> None:
        """Convert ``frame`` (mono, at ``rate``, default ``source_rate``) once per format and hand it out."""
        rate = self.source_rate if rate is None else rate
        for branch in tuple(self._branches.values()):
            gates = branch.gates
            if gates is not None and not any(wanted() for wanted in gates):
                if self._on_withheld is not None:
                    self._on_withheld()
                continue
            for item in branch.converter.convert(frame, rate):  # nothing for the RTP branch
                for sink in branch.snapshot:
                    sink(item)
                self.delivered_messages += len(branch.snapshot)

    def _converter(self, output: Output) -> _Converter:
        if isinstance(output, PcmOut):
            return _PcmConverter(output.rate, self._wrap)
        if isinstance(output, RtpOut):
            return _Forwarding()
        return _OpusConverter()
