"""The overload admission (``shoal.net.admission``): which senders are read when the server cannot keep up.

A simulated server: it reads ``capacity`` SRTP datagrams a second, each sender sends 50; when
the admitted senders send more, the loop falls behind (every lag sample late) and the age
check drops what it could not read in time. Hours of windows per case, exact expectations.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shoal.net import admission as admission_module
from shoal.net.admission import (
    MIN_KEPT,
    PROBATION_BEHIND,
    PROBATION_S,
    READMIT_MAX_WAIT_S,
    READMIT_WAIT_S,
    AdmissionPolicy,
    StreamAdmission,
    Window,
)

PPS = 50
SAMPLES = 10  # lag samples per 1 s window


def window(admitted: int, capacity: int) -> Window:
    demand = admitted * PPS
    over = demand > capacity
    return Window(SAMPLES, SAMPLES if over else 0, demand, max(0, demand - capacity))


@dataclass
class Run:
    limits: list[int | None]
    overloaded: list[bool]


def simulate(policy: AdmissionPolicy, senders: list[int], capacity: int, start: int = 0) -> Run:
    """One window per second from ``start``; ``senders[t]`` senders at its second t."""
    limits: list[int | None] = []
    overloaded: list[bool] = []
    for t, n in enumerate(senders):
        admitted = n if policy.limit is None else min(n, policy.limit)
        w = window(admitted, capacity)
        overloaded.append(w.overloaded)
        limits.append(policy.decide(float(start + t), w, admitted, n))
    return Run(limits, overloaded)


@pytest.mark.parametrize(("senders", "capacity"), [(200, 3500), (200, 1000), (60, 2900), (12, 400), (500, 7000)])
def test_sustained_overload_converges_to_capacity_within_seconds_and_stays_there_for_hours(
    senders: int, capacity: int
) -> None:
    fits = capacity // PPS
    run = simulate(AdmissionPolicy(sustain_windows=2), [senders] * 4 * 3600, capacity)
    settled = next(t for t, limit in enumerate(run.limits) if limit is not None and limit <= fits)
    assert settled <= 8, f"{settled} s to shed down to capacity"
    after = run.limits[settled:]
    assert all(limit is not None and 0.75 * fits - 1 <= limit <= 1.25 * fits + 1 for limit in after), "near capacity"
    assert all(limit is not None and fits - 2 <= limit <= fits + 2 for limit in after[60:]), "then at capacity"
    overloaded = sum(run.overloaded[settled:]) / len(after)
    assert overloaded < 0.05, f"overloaded {overloaded:.1%} of the time once settled (readmission probes only)"
    kept = sum(limit for limit in after if limit is not None) / len(after)
    assert kept >= fits - 1, f"{kept:.1f} senders kept on average of the {fits} that fit"


def test_readmission_probes_back_off_to_the_ceiling_while_the_load_stays() -> None:
    policy = AdmissionPolicy(sustain_windows=2)
    simulate(policy, [100] * 1200, 2000)
    assert policy.probe_wait_s == READMIT_MAX_WAIT_S


def test_when_senders_leave_the_paused_ones_are_readmitted_until_everyone_is_read() -> None:
    policy = AdmissionPolicy(sustain_windows=2)
    run = simulate(policy, [100] * 60 + [30] * 300, 2000)  # 40 fit
    assert run.limits[59] is not None and run.limits[59] <= 40
    assert run.limits[-1] is None, "all 30 remaining senders fit and are read"
    assert not any(run.overloaded[120:])


def test_a_single_stall_never_pauses_anyone() -> None:
    """One long iteration (a GC pause, a burst of DTLS handshakes) is not overload."""
    policy = AdmissionPolicy(sustain_windows=2)
    for t in range(100_000):
        stalled = t % 3 == 0
        w = Window(1 if stalled else SAMPLES, 1 if stalled else 0, 50 * 20, 0)
        assert policy.decide(float(t), w, 20, 20) is None


def test_never_below_min_kept_and_never_when_disabled() -> None:
    policy = AdmissionPolicy(sustain_windows=2)
    run = simulate(policy, [MIN_KEPT + 6] * 600, 50)  # not even one sender fits
    assert min(limit for limit in run.limits if limit is not None) == MIN_KEPT
    off = AdmissionPolicy(sustain_windows=0)
    assert all(limit is None for limit in simulate(off, [200] * 600, 1000).limits)


def test_when_the_machine_gets_faster_probes_hold_and_every_sender_comes_back() -> None:
    policy = AdmissionPolicy(sustain_windows=2)
    simulate(policy, [100] * 120, 2000)  # shed, probes at the ceiling fail
    assert policy.probe_wait_s > READMIT_WAIT_S and policy.ceiling is not None
    # Another process on the machine ended: 80 senders fit now.
    run = simulate(policy, [100] * 600, 80 * PPS, start=120)
    assert policy.ceiling is not None and 79 <= policy.ceiling <= 81
    # The first probe waits out the backed-off wait, then readmissions double while they hold.
    climbed = next(t for t, limit in enumerate(run.limits) if limit is not None and limit >= 78)
    assert climbed <= READMIT_MAX_WAIT_S + 60, f"{climbed} s to climb from 40 to 78 senders"
    assert all(limit is not None and limit >= 78 for limit in run.limits[climbed:]), "and stays at the new capacity"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(admission: StreamAdmission, clock: Clock, streams: list, seconds: int, capacity: int) -> None:
    """Each stream sends 50 datagrams a second; the loop reads ``capacity`` of the admitted ones in time."""
    for _ in range(seconds):
        admitted = [s for s in streams if not s.paused]
        budget = capacity
        for stream in streams:
            for _n in range(PPS):
                stream.media_in += 1
                if stream.paused:
                    stream.shed += 1
                    admission.shed_dropped += 1
                elif budget > 0:
                    budget -= 1
                else:
                    stream.aged_out += 1
        lag = 0.2 if len(admitted) * PPS > capacity else 0.0
        for _sample in range(SAMPLES):
            clock.now = round(clock.now + 0.1, 6)
            admission.observe_lag(lag)


def test_the_newest_streams_are_paused_and_the_oldest_paused_comes_back_first() -> None:
    clock = Clock()
    admission = StreamAdmission(sustain_windows=2, clock=clock)
    streams = [admission.register(f"peer {n}") for n in range(20)]
    drive(admission, clock, streams, 10, capacity=12 * PPS)
    paused = [n for n, s in enumerate(streams) if s.paused]
    assert paused == list(range(20 - len(paused), 20)) and 7 <= len(paused) <= 9, paused
    assert admission.stats()["paused"] == len(paused) and admission.senders == 20
    shed = sum(s.shed for s in streams)
    assert shed == admission.shed_dropped > 0
    # Three of the oldest leave: the oldest paused ones take their places.
    for stream in streams[:3]:
        admission.unregister(stream)
    rest = streams[3:]
    drive(admission, clock, rest, 60, capacity=12 * PPS)
    read = [n for n, s in enumerate(rest) if not s.paused]
    assert read == list(range(len(read))), "the read senders are always the oldest"
    assert len(read) >= 11


def test_bookkeeping_over_300000_datagrams_and_a_thousand_connections() -> None:
    """A long day: connections come and go, every datagram is counted once, the registry ends empty."""
    clock = Clock()
    admission = StreamAdmission(sustain_windows=2, clock=clock)
    live: list = []
    total = shed = 0
    for n in range(1000):
        live.append(admission.register(f"peer {n}"))
        if len(live) > 30:
            gone = live.pop(0)
            shed += gone.shed
            total += gone.media_in
            admission.unregister(gone)
        if n % 100 == 99:
            before = sum(s.media_in for s in live)
            drive(admission, clock, live, 20, capacity=20 * PPS)
            assert sum(s.media_in for s in live) - before == len(live) * PPS * 20
    for stream in live:
        shed += stream.shed
        total += stream.media_in
        admission.unregister(stream)
    assert total >= 300_000
    assert shed == admission.shed_dropped
    assert admission.streams == {} and admission.paused == 0
    admission.unregister(live[0])  # twice: harmless


def test_behind_while_reading_everything_in_time_still_converges_within_seconds() -> None:
    """The loop can be 50–100 ms behind while the age check drops nothing: the share read says
    nothing, so pauses double while the loop stays behind."""
    policy = AdmissionPolicy(sustain_windows=2)
    fits = 150
    limits = []
    for t in range(3600):
        admitted = 200 if policy.limit is None else min(200, policy.limit)
        over = admitted > fits
        w = Window(SAMPLES, SAMPLES if over else 0, admitted * PPS, 0)
        limits.append(policy.decide(float(t), w, admitted, 200))
    settled = next(t for t, limit in enumerate(limits) if limit is not None and limit <= fits)
    assert settled <= 10, f"{settled} s to shed 50 of 200 senders"
    assert all(limit is not None and limit >= fits - 40 for limit in limits[settled:])
    assert all(limit is not None and fits - 2 <= limit <= fits + 1 for limit in limits[120:]), "then settles at capacity"


def test_the_pause_delay_in_seconds_becomes_whole_windows() -> None:
    assert StreamAdmission.pausing_after(2.0, Clock()).sustain_windows == 2
    assert StreamAdmission.pausing_after(2.5, Clock()).sustain_windows == 3
    assert StreamAdmission.pausing_after(0, Clock()).policy.decide(0.0, Window(10, 10, 500, 400), 50, 50) is None


def readmitting(fits: int = 40) -> tuple[AdmissionPolicy, float, int]:
    """A policy past a sustained overload, at the moment it has just readmitted: (policy, now, limit before)."""
    policy = AdmissionPolicy(sustain_windows=2)
    simulate(policy, [100] * 60, fits * PPS)
    t = 60.0
    while True:
        before = policy.limit
        assert before is not None
        admitted = min(100, before)
        policy.decide(t, window(admitted, 10_000), admitted, 100)  # calm, whatever is admitted
        if policy.limit != before:
            return policy, t, before
        t += 1


def test_a_readmission_that_brings_the_lag_back_is_undone_at_once_and_remembered_as_the_ceiling() -> None:
    policy, t, before = readmitting()
    readmitted = policy.limit
    assert readmitted is not None and readmitted > before
    for n in range(1, PROBATION_BEHIND):
        assert policy.lag_sample(t + 0.1 * n, behind=True) == readmitted, "not yet: it could be a stall"
    undone_at = t + 0.1 * PROBATION_BEHIND
    assert policy.lag_sample(undone_at, behind=True) == before
    assert policy.ceiling == readmitted and policy.undone == 1
    # The next readmission, a probe of one sender at the new ceiling, waits its full wait from the undo.
    wait = policy.readmit_wait_s
    assert wait >= READMIT_WAIT_S
    for k in range(int(wait) - 1):
        assert policy.decide(undone_at + k + 1, window(before, 10_000), before, 100) == before
    assert policy.decide(undone_at + wait + 0.5, window(before, 10_000), before, 100) == before + 1


def test_a_stall_on_probation_or_lag_after_it_does_not_undo_a_readmission() -> None:
    policy, t, _ = readmitting()
    readmitted = policy.limit
    for n in range(1, 200):  # behind every other sample: stalls, never two in a row
        assert policy.lag_sample(t + 0.1 * n, behind=n % 2 == 0) == readmitted
    policy, t, _ = readmitting()
    readmitted = policy.limit
    for n in range(20):  # after the probation, lag is for the windows to judge
        assert policy.lag_sample(t + PROBATION_S + 0.1 * n, behind=True) == readmitted
    assert policy.undone == 0


def lag_run(monkeypatch: pytest.MonkeyPatch, probation: bool, hours: float, fits: int, senders: int) -> list[bool]:
    """A server that falls behind on every lag sample while it reads more than ``fits`` senders;
    the admission decides per sample and per window. Which samples were behind, once settled."""
    if not probation:
        monkeypatch.setattr(admission_module, "PROBATION_S", 0.0)
    clock = Clock()
    admission = StreamAdmission(sustain_windows=2, clock=clock)
    streams = [admission.register(f"peer {n}") for n in range(senders)]
    behind: list[bool] = []
    for _sample in range(int(hours * 3600 * SAMPLES)):
        admitted = [s for s in streams if not s.paused]
        for stream in streams:
            stream.media_in += PPS // SAMPLES
        over = len(admitted) > fits
        if over:
            for stream in admitted[fits:]:
                stream.aged_out += PPS // SAMPLES
        clock.now = round(clock.now + 0.1, 6)
        admission.observe_lag(0.2 if over else 0.0)
        behind.append(over)
    return behind[600:]


def longest_run(flags: list[bool]) -> int:
    longest = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def test_for_hours_a_failed_readmission_keeps_the_loop_behind_for_two_samples_not_two_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``/health`` sees: with probation the lag a readmission brings back lasts two lag
    samples (0.2 s); judged by whole windows only it lasts two windows or more."""
    behind = lag_run(monkeypatch, probation=True, hours=4, fits=45, senders=150)
    assert longest_run(behind) == PROBATION_BEHIND
    assert sum(behind) / len(behind) < 0.01
    monkeypatch.undo()
    without = lag_run(monkeypatch, probation=False, hours=0.5, fits=45, senders=150)
    assert longest_run(without) >= 2 * SAMPLES
