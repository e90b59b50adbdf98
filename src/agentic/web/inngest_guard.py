"""Checks on ``/api/inngest`` in production, made before the SDK reads (and JSON-parses) the body.

The SDK parses and canonicalises the whole body before it checks the HMAC, and it checks no timestamp. So an
unsigned request is refused here on its headers alone, at the cost of an API request; a signature whose time
is more than 5 minutes off is refused (a captured call cannot be replayed later); and the header is read the
way the SDK reads it (``urllib.parse.parse_qs``, first value wins), a repeated ``t`` or ``s`` being refused,
so the time we check is the time the SDK verifies.
"""

from __future__ import annotations

import re
import time
import urllib.parse

#: The Python SDK does not check a signature's age; we refuse one older (or newer) than this.
SIGNATURE_MAX_AGE_SECONDS = 300
SIGNATURE_HEADER = "X-Inngest-Signature"
SYNC_KIND_HEADER = "X-Inngest-Sync-Kind"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HMAC_HEX = re.compile(r"[0-9a-f]{64}")  # the SDK compares against hexdigest(): nothing else can ever match


def signature_problem(header: str | None, *, now: float | None = None) -> str | None:
    """Why ``X-Inngest-Signature`` cannot be accepted (absent, malformed, repeated, stale), or None."""
    if not header:
        return "missing signature"
    pairs = urllib.parse.parse_qsl(header, keep_blank_values=True)
    stamps = [value for key, value in pairs if key == "t"]
    macs = [value for key, value in pairs if key == "s"]
    if len(stamps) != 1 or len(macs) != 1:
        return "signature needs exactly one t= and one s="
    if _TIMESTAMP.fullmatch(stamps[0]) is None or _HMAC_HEX.fullmatch(macs[0]) is None:
        return "malformed signature"
    if abs((time.time() if now is None else now) - int(stamps[0])) > SIGNATURE_MAX_AGE_SECONDS:
        return "stale signature"
    return None


def is_in_band_sync(sync_kind: str | None) -> bool:
    """An in-band sync registers the URL Inngest put in the signed body, never the request's Host."""
    return sync_kind == "in_band"
