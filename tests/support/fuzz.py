"""Hypothesis strategies for hostile input: text, JSON, protobuf messages built from their descriptors.

``messages(cls)`` fills a real generated message class field by field from its descriptor:
one random member (or none) of every oneof, random values in every other field, nested
messages, repeated fields and maps, with strings drawn from ``hostile_text`` (control
characters, huge, deeply nested JSON, near-UUIDs) and integers over the field's whole
range (enums include values no ``.proto`` names). ``frames(cls)`` turns those into what a
socket can receive: the serialized message, or a truncation, bit flips, a concatenation
(protobuf merges it), trailing garbage, another message type, random bytes or text.

The settings ``FUZZ`` are bounded and derandomized, so CI runs the same examples every
time; set ``SHOAL_FUZZ_RANDOM=1`` (and ``SHOAL_FUZZ_EXAMPLES=5000``) to look for new bugs.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("SHOAL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("SHOAL_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
"""Bounded, reproducible settings for every fuzz property (see the module docstring)."""

MAX_NESTING = 3
"""Nested message levels filled in (deeper ones are set empty)."""

HEX32 = "0123456789abcdef0123456789abcdef"

INTERESTING_TEXT = [
    "", " ", "null", "{}", "[]", '""', "true", "0", "-0", "1e999", "NaN", "Infinity", "-Infinity",
    '{"a": NaN}', '{"a": Infinity}', '{"__proto__": {"x": 1}}', '{"a": 1, "a": 2}',
    "\n", "\r\n", "\x00", "\x1b[31m", "\u2028", "\ufeff", "\ud7ff", "\uffff", "\U0010ffff", "日本語", "💥" * 10,
    "%s%s%n", "${jndi:x}", "'; DROP TABLE rooms; --", "\\", '"', "a\nERROR forged log line",
    HEX32, HEX32.upper(), str(uuid.UUID(HEX32)), "urn:" + HEX32, "{" + HEX32 + "}",
    " " + HEX32[:30] + "\n", HEX32[:31] + "_", "0_" + HEX32[:30], "----" + HEX32,
    "\u0660" * 32,  # Arabic-Indic digits: int(..., 16) takes them
]
"""Strings that have broken parsers somewhere: JSON edge cases, log forgers, near-UUIDs."""


def nested_json(depth: int, kind: str) -> str:
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def hostile_text() -> st.SearchStrategy[str]:
    """Text a client may send anywhere a string goes."""
    return _HOSTILE_TEXT


def _hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.text(st.characters(max_codepoint=0x9F), max_size=40),  # C0 and C1 control characters
        st.sampled_from(INTERESTING_TEXT),
        st.builds(nested_json, st.integers(1, 3000), st.sampled_from("[{")),
        st.integers(0, 300_000).map(lambda n: "x" * n),
        st.integers(4000, 6000).map(lambda n: "1" * n),  # past int()'s 4300-digit limit
        json_text(),
    )


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
        max_leaves=max_leaves,
    )


def json_text() -> st.SearchStrategy[str]:
    return json_values().map(json.dumps)


_HOSTILE_TEXT = _hostile_text()
_TRACK_IDS = st.one_of(
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    _HOSTILE_TEXT,
)


def track_ids() -> st.SearchStrategy[str]:
    """Mostly real UUIDs in the spellings clients use, sometimes anything."""
    return _TRACK_IDS


_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

_NAMED_INTS = {
    "sample_rate": [0, 8000, 16000, 24000, 44100, 48000],
    "channels": [0, 1, 2, 3],
    "sdp_m_line_index": [0, 1, 2],
}
"""Fields a codec validates: values near its accepted ones come up often."""


_SCALARS: dict[str, st.SearchStrategy[Any]] = {}


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    """The values of one field (built once per field: building strategies is what costs)."""
    strategy = _SCALARS.get(field.full_name)
    if strategy is None:
        strategy = _SCALARS[field.full_name] = _new_scalar(field)
    return strategy


def _new_scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return track_ids() if field.name.endswith("id") else hostile_text()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=2000), st.integers(0, 1 << 20).map(lambda n: b"\x00" * n))
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    low, high = _INT_RANGES[kind]
    near = _NAMED_INTS.get(field.name, [0, 1, 2])
    return st.one_of(st.sampled_from(near), st.integers(-3, 64).filter(lambda v: low <= v <= high), st.integers(low, high))


_COUNTS = st.integers(0, 4)
_COIN = st.booleans()
_ONEOF_CHOICES: dict[str, st.SearchStrategy[FieldDescriptor | None]] = {}


def _choices(oneof: OneofDescriptor) -> st.SearchStrategy[FieldDescriptor | None]:
    strategy = _ONEOF_CHOICES.get(oneof.full_name)
    if strategy is None:
        strategy = _ONEOF_CHOICES[oneof.full_name] = st.sampled_from([None, *oneof.fields])
    return strategy


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _set_field(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    if _is_map(field):
        container = getattr(message, field.name)
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        for _ in range(draw(_COUNTS)):
            key = draw(_scalar(key_field))
            if value_field.message_type is not None:
                _fill(draw, container[key], depth + 1)
            else:
                container[key] = draw(_scalar(value_field))
    elif field.is_repeated:
        container = getattr(message, field.name)
        for _ in range(draw(_COUNTS)):
            if field.message_type is not None:
                _fill(draw, container.add(), depth + 1)
            else:
                container.append(draw(_scalar(field)))
    elif field.message_type is not None:
        sub = getattr(message, field.name)
        sub.SetInParent()
        _fill(draw, sub, depth + 1)
    else:
        setattr(message, field.name, draw(_scalar(field)))


def _fill(draw: st.DrawFn, message: Message, depth: int) -> None:
    if depth > MAX_NESTING:
        return
    descriptor: Descriptor = message.DESCRIPTOR
    for oneof in descriptor.oneofs:
        choice = draw(_choices(oneof))
        if choice is not None:
            _set_field(draw, message, choice, depth)
    for field in descriptor.fields:
        if field.containing_oneof is None and draw(_COIN):
            _set_field(draw, message, field, depth)


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Structurally valid messages of ``cls`` with random oneof members and field values."""

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        _fill(draw, message, 0)
        return message

    return build()


def frames(cls: type[Message], *others: type[Message]) -> st.SearchStrategy[bytes | str]:
    """What a socket expecting ``cls`` may receive: valid, damaged, foreign or random frames."""
    valid = messages(cls).map(lambda m: m.SerializeToString())

    @st.composite
    def damaged(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(valid))
        how = draw(st.sampled_from(["truncate", "flip", "concat", "suffix"]))
        if how == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif how == "flip" and data:
            for _ in range(draw(st.integers(1, 8))):
                bit = draw(st.integers(0, len(data) * 8 - 1))
                data[bit // 8] ^= 1 << (bit % 8)
        elif how == "concat":
            data += draw(valid)
        else:
            data += draw(st.binary(min_size=1, max_size=64))
        return bytes(data)

    foreign = [messages(other).map(lambda m: m.SerializeToString()) for other in others]
    return st.one_of(
        valid,
        damaged(),
        *foreign,
        st.binary(max_size=200),
        st.text(max_size=200),
        valid.map(lambda data: data.decode("latin-1")),  # the right bytes in a text frame
    )
