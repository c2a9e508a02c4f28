"""Access tokens: issue, verify, and the memory of verified tokens."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from excentra.http import auth
from excentra.http.auth import LEEWAY, Principal, Tokens

SECRET = "s" * 32
USER = str(uuid.UUID(int=7))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(auth.time, "time", c)  # the module's clock; pyjwt keeps the real one
    return c


def test_a_token_verifies_to_its_principal() -> None:
    tokens = Tokens(SECRET)
    assert tokens.decode(tokens.access(USER, "admin")) == Principal(USER, "admin")


def test_a_repeated_token_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens(SECRET)
    token = tokens.access(USER, "user")
    calls = []
    real = jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert tokens.decode(token) == Principal(USER, "user")
    assert tokens.decode(token) == Principal(USER, "user")
    assert len(calls) == 1


def test_a_remembered_token_still_expires(clock: Clock) -> None:
    tokens = Tokens(SECRET, ttl=900)
    token = tokens.access(USER, "user")
    assert tokens.decode(token) is not None  # verified and remembered
    clock.now += 900 + LEEWAY - 1
    assert tokens.decode(token) is not None  # within the accepted clock skew
    clock.now += 1
    assert tokens.decode(token) is None  # the same rule as pyjwt's: exp <= now - leeway
    assert token not in tokens._verified  # and forgotten


def test_another_signature_is_never_a_hit() -> None:
    tokens = Tokens(SECRET)
    token = tokens.access(USER, "user")
    assert tokens.decode(token) is not None
    forged = jwt.encode({"user_id": USER, "role": "admin", "exp": int(time.time()) + 900},
                        "another-secret-another-secret-00", algorithm="HS256")
    assert tokens.decode(forged) is None
    head, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    assert tokens.decode(f"{head}.{payload}.{flipped}{signature[1:]}") is None


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Tokens, "CACHE_SIZE", 3)
    tokens = Tokens(SECRET)
    users = [str(uuid.UUID(int=i)) for i in range(5)]
    issued = [tokens.access(u, "user") for u in users]
    for token in issued:
        assert tokens.decode(token) is not None
    assert list(tokens._verified) == issued[2:]  # the oldest went first
