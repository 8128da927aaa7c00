"""The shipped front end (js/), found and put together for the two ways it reaches a browser.

Both views draw with js/view.js. The widget's js/board.js imports it, but anywidget hands ``_esm`` to the
browser as one module from a blob: URL, where ``./view.js`` resolves to nothing; Colab's output is an HTML
snippet whose ``<script>`` cannot import from the kernel at all. So the kernel inlines: :func:`module` for
anywidget, :func:`script` for Colab. An import line is the only shape this understands
(``import { a, b } from "./name.js";``), checked by tests/test_view_contract.py. No build step: the files
ship as they are (``nbboard/static`` in a wheel, ``js/`` in a checkout).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_IMPORT = re.compile(r'^import \{[^}]*\} from "\./([\w-]+\.js)";\n', re.MULTILINE)
_EXPORT = re.compile(r"^export (?=(?:async function|function|const|class|let) )", re.MULTILINE)


def static(name: str) -> Path:
    """A shipped front-end file: ``nbboard/static`` in a wheel, ``js/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static" / name, here.parent / "js" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nbboard's front end {name} is missing; reinstall nbboard")


def _inlined(name: str, seen: set[str]) -> str:
    """``name``'s source with each module it imports put in front (once), their ``export`` words kept."""
    source = static(name).read_text(encoding="utf-8")
    parts: list[str] = []
    for imported in _IMPORT.findall(source):
        if imported not in seen:
            seen.add(imported)
            parts.append(_inlined(imported, seen))
    parts.append(_IMPORT.sub("", source))
    return "\n".join(parts)


@cache
def module(name: str) -> str:
    """``name`` as one ES module (for anywidget's ``_esm``): what it imports from ``./`` inlined."""
    return _inlined(name, {name})


@cache
def script(name: str) -> str:
    """``name`` as one classic script (for an inline ``<script>``): inlined as by :func:`module`, without the
    ``export`` words, in a block of its own so that its names stay out of the page's globals."""
    source = _EXPORT.sub("", module(name))
    if "</script" in source.lower():  # would end the inline <script> early
        raise ValueError(f"{name} must not contain '</script'")
    return "(() => {\n" + source + "\n})();"
