"""Log lines that say which room, peer and track they are about, as text or as JSON.

The ids come from two places: ``extra=ids(room_id=..., ...)`` on the call, or the ids bound to
the current task with :func:`bind` (a peer's or agent's socket binds its room and peer once it
has authenticated; tasks it starts inherit them, asyncio copying the context). What a call
passes wins over what is bound.

``--log-format json`` writes one object per line: ``ts`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, the ids that are known, any other ``extra`` fields, and ``exc`` with
the traceback. ``text`` writes the classic line with ``room=… peer=… track=…`` appended.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

ID_FIELDS = ("room_id", "peer_id", "track_id")
_bound: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"shoal_log_{name}", default=None) for name in ID_FIELDS
}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName", "color_message"}
LogFormat = Literal["text", "json"]


def bind(**ids: str | None) -> None:
    """Bind ids (``room_id``, ``peer_id``, ``track_id``) to the current task and the tasks it starts."""
    for name, value in ids.items():
        _bound[name].set(value)


def ids(**values: str | None) -> dict[str, str]:
    """``extra=`` for a log call about these ids (None values are left out)."""
    return {name: value for name, value in values.items() if value is not None}


class IdFilter(logging.Filter):
    """Puts the bound ids on every record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _bound.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value for key, value in vars(record).items()
        if key not in _STANDARD and key not in ID_FIELDS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        line.update(_extras(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [f"{name[:-3]}={value}" for name in ID_FIELDS if (value := getattr(record, name, None)) is not None]
        if not tags:
            return text
        head, newline, tail = text.partition("\n")  # a traceback stays below the tagged line
        return f"{head} [{' '.join(tags)}]{newline}{tail}"


def configure(level: str, log_format: LogFormat) -> None:
    """Route every logger (shoal's, uvicorn's, libraries') to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(IdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning is a line in the same format, not raw stderr
