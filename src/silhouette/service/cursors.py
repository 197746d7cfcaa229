"""Page cursors as the API hands them out: the position a page ended at, as JSON in URL-safe
base64. Opaque to clients, and checked when one comes back, since anyone can forge one."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any


class InvalidCursor(Exception):
    pass


def encode(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode(cursor: str, valid: Callable[[Any], bool]) -> Any:
    """The position `cursor` holds, if `valid` accepts it; else `InvalidCursor`."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidCursor("not a cursor this API returned") from None
    if not valid(position):
        raise InvalidCursor("not a cursor this API returned")
    return position
