"""Check captured webhook bodies with the official SDK's signature check and decoder.

Reads ``{"secret": str, "bodies": [{"body_hex": str, "signature": str}]}`` from stdin.
"""

from __future__ import annotations

import json
import sys

import betterproto
from fishjam import decode_server_notifications, verify_webhook_signature
from fishjam.events._protos.fishjam import ServerMessage

from _scenario import Params, Result, describe, main


def decode(params: Params) -> Result:
    request = json.load(sys.stdin)
    secret: str = request["secret"]
    results = []
    for item in request["bodies"]:
        body = bytes.fromhex(item["body_hex"])
        signature: str = item["signature"]
        kind, _ = betterproto.which_one_of(ServerMessage().parse(body), "content")
        results.append({
            "verified": verify_webhook_signature(body, signature, secret),
            "verified_with_wrong_secret": verify_webhook_signature(body, signature, secret + "-wrong"),
            "kind": kind,
            "notifications": [describe(n) for n in decode_server_notifications(body)],
        })
    return {"bodies": results}


if __name__ == "__main__":
    main({"decode": decode})
