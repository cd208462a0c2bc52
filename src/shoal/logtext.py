"""Client-supplied text in log lines: bounded and escaped.

A client chooses its ids, tokens and URLs; logged raw, a 900 KB id writes 900 KB of log
per frame and a newline in it forges a log line. ``clip`` keeps the first ``limit``
characters and escapes every control character (``repr``-style), so one value always
stays one short, readable piece of one line.
"""

from __future__ import annotations

__all__ = ["clip"]


def clip(s: str, limit: int = 64) -> str:
    """``s`` cut to ``limit`` characters (``…(+N)`` says how many were cut), control characters escaped.

    The result is ``repr``-style without the quotes: ``\\n``, ``\\x00``, ``\\u2028`` and so on
    stand for themselves, backslashes are doubled, printable text is kept as it is.
    """
    cut = len(s) - limit
    head = s[:limit] if cut > 0 else s
    if not head.isprintable() or "\\" in head:
        head = "".join(_escape(c) for c in head)
    return f"{head}…(+{cut})" if cut > 0 else head


def _escape(c: str) -> str:
    if c == "\\":
        return "\\\\"
    return c if c.isprintable() else repr(c)[1:-1]
