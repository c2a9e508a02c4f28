"""Times as the API writes them (the original's format): UTC, microseconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def api_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
