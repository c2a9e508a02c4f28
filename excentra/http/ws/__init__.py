"""The WebSocket side of the API: ``/ws`` (reference §4, API.md)."""

from __future__ import annotations

from typing import Any

PING_INTERVAL = 20.0
"""Seconds between the server's pings (API.md); a peer silent for as long again is dropped."""
MAX_FRAME = 64 * 1024
"""Largest frame accepted from a client, bytes; a larger one closes with 1009."""


def uvicorn_options(ping_interval: float = PING_INTERVAL) -> dict[str, Any]:
    """The uvicorn settings the WebSocket protocol relies on (keep-alive, frame limit).
    Per-message compression is off: it would compress every event once per subscriber."""
    return {"ws": "websockets-sansio", "ws_ping_interval": ping_interval,
            "ws_ping_timeout": ping_interval, "ws_max_size": MAX_FRAME,
            "ws_per_message_deflate": False}
