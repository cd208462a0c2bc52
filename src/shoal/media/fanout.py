"""TrackFanout: one per published audio track; converts once per output format.

Sinks are grouped by the sample rate they want. Each 20 ms mono frame is resampled once
per rate and wrapped into wire bytes once per rate (by the injected ``wrap``), and the
same bytes object is handed to every sink of that rate. Subscribe and unsubscribe
rebuild immutable tuples, so delivery iterates a snapshot that nothing mutates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shoal.media.pcm import Resampler, Samples

Sink = Callable[[bytes], None]
"""Receives one wire-ready message; must not block (it enqueues into a bounded outbox)."""

Wrap = Callable[[bytes], bytes]
"""Turns PCM bytes of this track into the message a sink receives."""


@dataclass
class _Branch:
    resampler: Resampler
    sinks: dict[str, Sink] = field(default_factory=dict)
    snapshot: tuple[Sink, ...] = ()

    def rebuild(self) -> None:
        self.snapshot = tuple(self.sinks.values())


class TrackFanout:
    def __init__(self, source_rate: int, wrap: Wrap) -> None:
        self.source_rate = source_rate
        self._wrap = wrap
        self._branches: dict[int, _Branch] = {}
        self._rate_of: dict[str, int] = {}
        self.delivered_messages = 0

    @property
    def receiver_ids(self) -> set[str]:
        return set(self._rate_of)

    def attach(self, receiver_id: str, sample_rate: int, sink: Sink) -> None:
        """Deliver this track to ``sink`` as mono PCM at ``sample_rate`` (idempotent)."""
        if self._rate_of.get(receiver_id) == sample_rate:
            return
        self.detach(receiver_id)
        branch = self._branches.get(sample_rate)
        if branch is None:
            branch = self._branches[sample_rate] = _Branch(Resampler(self.source_rate, sample_rate))
        branch.sinks[receiver_id] = sink
        branch.rebuild()
        self._rate_of[receiver_id] = sample_rate

    def detach(self, receiver_id: str) -> None:
        rate = self._rate_of.pop(receiver_id, None)
        if rate is None:
            return
        branch = self._branches[rate]
        branch.sinks.pop(receiver_id, None)
        if branch.sinks:
            branch.rebuild()
        else:
            del self._branches[rate]

    def deliver(self, frame: Samples) -> None:
        """Convert ``frame`` (mono, at ``source_rate``) once per rate and hand it out."""
        for branch in tuple(self._branches.values()):
            pcm = branch.resampler.process(frame)
            if not len(pcm):
                continue
            message = self._wrap(pcm.astype("<i2", copy=False).tobytes())
            for sink in branch.snapshot:
                sink(message)
            self.delivered_messages += len(branch.snapshot)
