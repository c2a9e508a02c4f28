"""The documentation stands alone and keeps up with the code: every link in ``README.md``
and ``docs/*.md`` reaches a file of this repository (and, with a ``#fragment``, a heading
of it), nothing points outside the repository to the team's notes, and ``docs/API.md``
lists exactly the routes the app serves (each method and path as a table row)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from excentra.http.app import create_app
from excentra.http.config import Settings

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "API.md"
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$",
                             re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = ("http://", "https://", "mailto:")
_ROUTE_ROW = re.compile(r"^\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*`([^`]+)`\s*\|",
                        re.MULTILINE)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code (where a ``[x](y)`` is code)."""
    return _CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = _prose(text)
    return _INLINE_LINK.findall(prose) + _REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in _HEADING.findall(text):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # repeated headings get -1, -2, …
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=_rel)
def test_links_reach_files_and_headings_of_this_repository(document: Path) -> None:
    broken: list[str] = []
    for target in links(document.read_text(encoding="utf-8")):
        if target.startswith(_EXTERNAL):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if ROOT not in (linked, *linked.parents):
            broken.append(f"{target}: outside the repository")
        elif not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {_rel(linked)}")
    assert not broken, f"{_rel(document)}: {broken}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_rel)
def test_no_reference_to_the_team_notes(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{_rel(document)} points outside the repository"


def test_readme_lists_every_document() -> None:
    readme = links((ROOT / "README.md").read_text(encoding="utf-8"))
    listed = {(ROOT / t.partition("#")[0]).resolve() for t in readme
              if not t.startswith(_EXTERNAL)}
    missing = [_rel(d) for d in DOCUMENTS if d.parent.name == "docs" and d not in listed]
    assert not missing, f"README.md does not link {missing}"


def served_routes() -> set[tuple[str, str]]:
    """``(method, path template)`` of every route of the app (``{symbol:path}`` →
    ``{symbol}``); a mount as ``("GET", "/prefix/…")``, a WebSocket as ``GET``."""
    app = create_app(Settings())  # not started: building it reads no environment
    found: set[tuple[str, str]] = set()

    def walk(routes: list[BaseRoute]) -> None:
        for route in routes:
            if isinstance(route, Route):
                path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
                found.update((m, path) for m in (route.methods or ()) if m != "HEAD")
            elif isinstance(route, WebSocketRoute):
                found.add(("GET", route.path))
            elif isinstance(route, Mount):
                found.add(("GET", f"{route.path}/…"))

    walk(app.routes)
    return found


def documented_routes() -> set[tuple[str, str]]:
    """Every ``| METHOD | `path` |`` table row of ``docs/API.md``."""
    return set(_ROUTE_ROW.findall(API.read_text(encoding="utf-8")))


def test_every_route_served_is_documented_in_api_md() -> None:
    served = served_routes()
    assert ("GET", "/api/v1/orders/{order_id}") in served  # the walk finds the app's routes
    assert ("GET", "/ws") in served
    missing = sorted(served - documented_routes())
    assert not missing, f"docs/API.md has no `| METHOD | `path` |` row for {missing}"


def test_every_route_documented_is_served() -> None:
    stale = sorted(documented_routes() - served_routes())
    assert not stale, f"docs/API.md documents routes the app does not serve: {stale}"


def test_the_link_and_anchor_rules_themselves() -> None:
    text = ("[a](docs/API.md#auth) `[b](nope.md)`\n[c]: https://x.org\n"
            "```\n[d](code.md)\n```\n[e](<../shared/API.md>)")
    assert links(text) == ["docs/API.md#auth", "../shared/API.md", "https://x.org"]
    assert slug("WebSocket `/ws`") == "websocket-ws"
    assert slug("Differences from the original Excentra, and why") == \
        "differences-from-the-original-excentra-and-why"
