"""Why an SDP offer cannot be answered, in words about the client's offer.

aiortc refuses a bad offer with whatever its code happens to raise: sometimes a clear
message, sometimes ``'NoneType' object has no attribute '_set_mid'`` (two m-lines with one
mid) or ``invalid literal for int() with base 10``. A close reason goes to the client, so
it must say what is wrong with the offer and never carry aiortc's text: the mistakes that
aiortc reports only with internal errors are found here before aiortc sees the offer, its
clear refusals are translated, and anything else is "could not be applied" (the server
logs the details).
"""

from __future__ import annotations

import re

from aiortc.exceptions import InvalidStateError, OperationError

COULD_NOT_APPLY = "it could not be applied"

_M_LINE = re.compile(r"m=\S+ \d+(/\d+)? \S+( \S+)+")
_NUMBERED = {
    "a=rtpmap:": re.compile(r"\d+ \S"),
    "a=fmtp:": re.compile(r"\d+( |$)"),
    "a=rtcp-fb:": re.compile(r"(\d+|\*) \S"),
    "a=ssrc:": re.compile(r"\d+( |$)"),
    "a=extmap:": re.compile(r"\d+(/\w+)? \S"),
}
"""Attributes whose first field is a number aiortc parses with ``int()``."""


def offer_structure_problem(sdp: str) -> str | None:
    """What is wrong with the m-lines of an offer that aiortc would only fail on internally, or None."""
    mids: dict[str, int] = {}
    section = 0
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            section += 1
            if not _M_LINE.fullmatch(line):
                return f"m-line {section} is not 'm=<media> <port> <proto> <formats>': {line[:40]!r}"
        elif line.startswith("a=mid:") and section:
            mid = line[len("a=mid:") :]
            if mid in mids:
                return f"m-lines {mids[mid]} and {section} have the same mid {mid[:20]!r}"
            mids[mid] = section
        elif line.startswith("a=candidate:") and len(line.split()) < 8:
            return f"an a=candidate line has too few fields: {line[:40]!r}"
        else:
            for prefix, pattern in _NUMBERED.items():
                if line.startswith(prefix) and not pattern.match(line[len(prefix) :]):
                    return f"{prefix[:-1]} needs a number first: {line[:40]!r}"
    return None


def offer_refusal(exc: BaseException) -> str:
    """The client's mistake behind aiortc's refusal ``exc`` of an offer, or ``COULD_NOT_APPLY``."""
    text = str(exc)
    if isinstance(exc, ValueError) and text == "ICE username fragment or password is missing":
        return "an m-line has no a=ice-ufrag or a=ice-pwd"
    if isinstance(exc, ValueError) and text == "RTCP mux is not enabled":
        return "an m-line does not use a=rtcp-mux"
    if isinstance(exc, OperationError) and text.startswith("Failed to set remote audio"):
        return "an audio m-line offers no codec shoal supports (Opus)"
    if isinstance(exc, OperationError) and text.startswith("Failed to set remote video"):
        return "a video m-line offers no codec shoal supports"
    if isinstance(exc, InvalidStateError):
        return "it does not fit the state of the negotiation"
    return COULD_NOT_APPLY
