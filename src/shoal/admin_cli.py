"""``shoal room|peer|agent|notifications``: manage a running server from a terminal or a script.

Each command talks to a server's REST API (or its notifier socket) with the management token,
from ``--url``/``--token`` or ``SHOAL_URL``/``SHOAL_MANAGEMENT_TOKEN``. Output is a table for
people and, with ``--json``, the server's own JSON (the ``data`` of its reply) for scripts.

Exit codes: 0 done; 1 the server refused the request (unknown room, bad option: its message is
printed); 2 bad usage (missing URL or token, bad arguments); 3 the server could not be reached;
4 the management token was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from google.protobuf.json_format import MessageToDict

from fishjam import FishjamNotifier

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNAUTHORIZED = 4


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_commands(commands: Any) -> None:
    """Add the client commands to ``shoal``'s subcommand parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("SHOAL_URL"), help="the server's HTTP URL [SHOAL_URL]")
    common.add_argument("--token", default=os.environ.get("SHOAL_MANAGEMENT_TOKEN"), help="the management token [SHOAL_MANAGEMENT_TOKEN]")
    common.add_argument("--json", action="store_true", help="print the server's JSON instead of a table")
    epilog = "exit codes: 0 done, 1 refused by the server, 2 bad usage, 3 server unreachable, 4 token refused"

    room = commands.add_parser("room", help="create, list, show or delete rooms", epilog=epilog)
    room_commands = room.add_subparsers(dest="action", required=True)
    create = room_commands.add_parser("create", parents=[common], help="create a room", epilog=epilog)
    create.add_argument("--room-type", help="e.g. conference, audio_only, full_feature")
    create.add_argument("--max-peers", type=int)
    create.add_argument("--video-codec", choices=["h264", "vp8"])
    create.add_argument("--webhook-url")
    create.set_defaults(run=_room_create)
    room_commands.add_parser("list", parents=[common], help="list rooms", epilog=epilog).set_defaults(run=_room_list)
    show = room_commands.add_parser("show", parents=[common], help="a room and its peers", epilog=epilog)
    show.add_argument("room")
    show.set_defaults(run=_room_show)
    delete = room_commands.add_parser("delete", parents=[common], help="delete a room", epilog=epilog)
    delete.add_argument("room")
    delete.set_defaults(run=_room_delete)

    peer = commands.add_parser("peer", help="add a participant to a room", epilog=epilog)
    peer_commands = peer.add_subparsers(dest="action", required=True)
    peer_create = peer_commands.add_parser("create", parents=[common], help="a WebRTC peer: its token and a demo join URL", epilog=epilog)
    peer_create.add_argument("room")
    peer_create.add_argument("--metadata", help="JSON the peer's metadata starts with")
    peer_create.add_argument("--subscribe-mode", choices=["auto", "manual"], default="auto")
    peer_create.set_defaults(run=_peer_create)

    agent = commands.add_parser("agent", help="add an agent to a room", epilog=epilog)
    agent_commands = agent.add_subparsers(dest="action", required=True)
    agent_create = agent_commands.add_parser("create", parents=[common], help="an agent: its id and token", epilog=epilog)
    agent_create.add_argument("room")
    agent_create.add_argument("--sample-rate", type=int, choices=[16000, 24000], default=16000, help="of the audio the agent receives")
    agent_create.add_argument("--subscribe-mode", choices=["auto", "manual"], default="auto")
    agent_create.set_defaults(run=_agent_create)

    notifications = commands.add_parser(
        "notifications", parents=[common], help="print the server's notifications as they happen", epilog=epilog
    )
    notifications.add_argument("--room", help="only this room's")
    notifications.set_defaults(run=_notifications)


def run(args: argparse.Namespace) -> int:
    """Run a client command; print its result or its error; return the exit code."""
    try:
        if not args.url:
            raise CliError("no server URL: pass --url or set SHOAL_URL", EXIT_USAGE)
        if not args.token:
            raise CliError("no management token: pass --token or set SHOAL_MANAGEMENT_TOKEN", EXIT_USAGE)
        command: Callable[[argparse.Namespace], None] = args.run
        command(args)
    except CliError as exc:
        print(f"shoal: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return 0


# --- REST ---------------------------------------------------------------------------------


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    url = args.url.rstrip("/")
    try:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {args.token}"}, timeout=10) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {url}: {exc}", EXIT_UNREACHABLE) from None
    if response.status_code == 401:
        raise CliError(f"{url} refused the management token", EXIT_UNAUTHORIZED)
    if response.status_code >= 400:
        raise CliError(_error_text(response), EXIT_REFUSED)
    if response.status_code == 204 or not response.content:
        return None
    return response.json().get("data")


def _error_text(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
    except ValueError:
        errors = None
    return f"{errors or response.reason_phrase} (HTTP {response.status_code})"


def _room_path(room: str) -> str:
    return f"/room/{quote(room, safe='')}"


def _room_create(args: argparse.Namespace) -> None:
    config = {
        key: value
        for key, value in (
            ("roomType", args.room_type), ("maxPeers", args.max_peers),
            ("videoCodec", args.video_codec), ("webhookUrl", args.webhook_url),
        )
        if value is not None
    }
    data = _call(args, "POST", "/room", config)
    _out(args, data, lambda: _table(["ROOM", "TYPE", "MAX PEERS"], [_room_row(data["room"])[:3]]))


def _room_list(args: argparse.Namespace) -> None:
    rooms = _call(args, "GET", "/room")
    _out(args, rooms, lambda: _table(["ROOM", "TYPE", "MAX PEERS", "PEERS", "CONNECTED"], [_room_row(r) for r in rooms]))


def _room_row(room: dict[str, Any]) -> list[str]:
    config = room.get("config", {})
    peers = room.get("peers", [])
    connected = sum(1 for p in peers if p.get("status") == "connected")
    max_peers = config.get("maxPeers")
    return [room["id"], str(config.get("roomType", "")), "-" if max_peers is None else str(max_peers), str(len(peers)), str(connected)]


def _room_show(args: argparse.Namespace) -> None:
    room = _call(args, "GET", _room_path(args.room))

    def table() -> None:
        _table(["ROOM", "TYPE", "MAX PEERS", "PEERS", "CONNECTED"], [_room_row(room)])
        print()
        rows = [
            [p["id"], p.get("type", ""), p.get("status", ""), str(len(p.get("tracks", []))), json.dumps(p.get("metadata"))]
            for p in room.get("peers", [])
        ]
        _table(["PEER", "TYPE", "STATUS", "TRACKS", "METADATA"], rows)

    _out(args, room, table)


def _room_delete(args: argparse.Namespace) -> None:
    _call(args, "DELETE", _room_path(args.room))
    _out(args, {"deleted": args.room}, lambda: print(f"deleted room {args.room}"))


def _peer_create(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {"subscribeMode": args.subscribe_mode}
    if args.metadata is not None:
        try:
            options["metadata"] = json.loads(args.metadata)
        except ValueError as exc:
            raise CliError(f"--metadata is not JSON: {exc}", EXIT_USAGE) from None
    data = _call(args, "POST", f"{_room_path(args.room)}/peer", {"type": "webrtc", "options": options})
    join_url = f"{args.url.rstrip('/')}/demo?{urlencode({'room': args.room, 'token': data['token']})}"
    data = {**data, "join_url": join_url}
    _out(args, data, lambda: _table(["PEER", "TOKEN", "JOIN URL"], [[data["peer"]["id"], data["token"], join_url]]))


def _agent_create(args: argparse.Namespace) -> None:
    options = {"output": {"audioFormat": "pcm16", "audioSampleRate": args.sample_rate}, "subscribeMode": args.subscribe_mode}
    data = _call(args, "POST", f"{_room_path(args.room)}/peer", {"type": "agent", "options": options})
    _out(args, data, lambda: _table(["AGENT", "TOKEN"], [[data["peer"]["id"], data["token"]]]))


# --- notifications ----------------------------------------------------------------------------


def _notifications(args: argparse.Namespace) -> None:
    _call(args, "GET", "/room")  # a clear error for a bad URL or token before the socket opens
    notifier = FishjamNotifier(args.url, args.token)

    @notifier.on_server_notification
    def _print(notification: Any) -> None:
        fields = MessageToDict(notification, preserving_proto_field_name=True)
        if args.room and fields.get("room_id") != args.room:
            return
        kind = type(notification).__name__
        if args.json:
            print(json.dumps({"type": kind, "at": time.time(), **fields}), flush=True)
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime())
            print(f"{stamp} {kind:<22} " + " ".join(f"{k}={_flat(v)}" for k, v in fields.items()), flush=True)

    async def tail() -> None:
        listening = asyncio.create_task(notifier.connect())
        ready = asyncio.create_task(notifier.wait_ready())
        await asyncio.wait([listening, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            print(f"shoal: listening to {args.url}'s notifications (Ctrl-C ends)", file=sys.stderr, flush=True)
        else:
            ready.cancel()
        await listening

    try:
        asyncio.run(tail())
    except OSError as exc:
        raise CliError(f"cannot reach {args.url}: {exc}", EXIT_UNREACHABLE) from None
    except Exception as exc:  # the socket closed with a reason (the SDK's error says which)
        raise CliError(f"notifications ended: {exc}", EXIT_REFUSED) from None


def _flat(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# --- output -------------------------------------------------------------------------------


def _out(args: argparse.Namespace, data: Any, table: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        table()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip())
