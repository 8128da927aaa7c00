"""The contract between the kernel and the board's one view (issue 20, item 2): every status, action and
state name the JS uses is one nbboard/boardview.py declares, and Colab's markup without scripts says what the
shared view (js/view.js) draws, from the first frame through its ticking clock.

Real: the shipped JS in node and in headless Chromium, the views' Python objects. No front end is faked:
Colab's output is rendered as it is sent, in a page without ``google.colab`` (its markup and the shared
view's drawing are what is checked, not Colab's APIs, which tests/test_colab.py covers).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from nbboard import boardview, colab, embed, fmt, frontend, hosts
from nbboard.widget import BoardWidget
from tests.browser import chromium
from tests.helpers import ROOT

JS = ROOT / "js"


def _source(name: str) -> str:
    return (JS / name).read_text(encoding="utf-8")


def _frozen_object(source: str, name: str) -> dict[str, str]:
    body = re.search(rf"export const {name} = Object\.freeze\(\{{(.*?)\}}\);", source, re.S)
    assert body, f"view.js declares no {name}"
    return dict(re.findall(r'(\w+): "([^"]*)"', body[1]))


def test_view_js_mirrors_the_statuses_and_actions_python_declares() -> None:
    view = _source("view.js")
    statuses, actions = _frozen_object(view, "STATUS"), _frozen_object(view, "ACTION")
    assert statuses == {k: v for k, v in vars(boardview.Status).items() if not k.startswith("_")}
    assert actions == {k: v for k, v in vars(boardview.Action).items() if not k.startswith("_")}
    assert tuple(statuses.values()) == boardview.STATUSES and tuple(actions.values()) == boardview.ACTIONS


@pytest.mark.parametrize("name", ["board.js", "colab_board.js", "view.js", "frame_park.js"])
def test_every_name_the_js_uses_is_declared_in_python(name: str) -> None:
    """No bare status or action string in the JS (each goes through STATUS/ACTION), every STATUS.X and
    ACTION.X exists, and every piece of state the JS reads is one the kernel sends."""
    source = _source(name)
    view = _source("view.js")
    statuses, actions = _frozen_object(view, "STATUS"), _frozen_object(view, "ACTION")
    assert set(re.findall(r"\bSTATUS\.(\w+)", source)) <= set(statuses)
    assert set(re.findall(r"\bACTION\.(\w+)", source)) <= set(actions)
    code = re.sub(r"export const (STATUS|ACTION) = Object\.freeze\(\{.*?\}\);", "", source, flags=re.S)
    bare = re.findall(r'(?:status\)?|cfg\.status) [!=]== "(\w+)"|type: "(\w+)"|\bact\("(\w+)"', code)
    assert bare == [], f"{name} names a status or action by a bare string: {bare}"

    synced = set(BoardWidget.class_trait_names(sync=True))
    for used in re.findall(r'model\.(?:get|set)\("(\w+)"', source) + re.findall(r'"change:(\w+)"', source):
        assert used in synced, f"{name} reads {used!r}, which the widget does not sync"
    state = set(boardview.BoardState.class_trait_names())
    drawn_from = re.findall(r"\bs\.(\w+)", source)  # the shared view's state argument
    assert set(drawn_from) <= state, set(drawn_from) - state
    config = {*colab.DRAWN, "view", "callback", "elapsed"}
    assert set(re.findall(r"\bcfg\.(\w+)", source)) <= config, set(re.findall(r"\bcfg\.(\w+)", source)) - config
    for route_field in re.findall(r"\broute\.(\w+)", source):
        assert route_field in hosts.DIRECT.to_json(), route_field


def test_python_sends_and_answers_only_declared_actions() -> None:
    board = embed.Board.__new__(embed.Board)  # the actions a board hands its view, without displaying one
    widget = BoardWidget(actions={boardview.Action.STOP: board.stop, boardview.Action.CLOSE_TUNNEL: board.close_tunnel})
    sent: list[dict] = []
    widget.send = sent.append  # type: ignore[method-assign]
    widget._on_front_end_msg(widget, {"type": boardview.Action.TUNNEL_URL}, [])
    assert [m["type"] for m in sent] == [boardview.Action.TUNNEL_URL]
    assert set(widget.actions) <= set(boardview.ACTIONS)
    view = colab.ColabView(status=boardview.Status.RUNNING)
    assert colab.answer(view.view_id, boardview.Action.TUNNEL_URL) == {"error": "the public link is closed"}


def test_the_clock_is_the_same_in_python_and_in_the_view() -> None:
    """Colab's markup (fmt.clock) and the shared view (view.js's duration) count alike, so a header never
    changes shape when the browser takes over its clock."""
    seconds = [0, 1, 59, 60, 61, 3599, 3600, 3660, 7199, 7200, 7260, 86399, 86400, 90000, 172800, 10**7]
    script = (
        f"import {{ duration }} from {json.dumps((JS / 'view.js').as_uri())};"
        f"console.log(JSON.stringify({json.dumps(seconds)}.map(duration)));"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [fmt.clock(s) for s in seconds]
    assert fmt.clock(7200) == "2 h 0 min"  # where fmt.duration says "2 h", and the header used to jump


def test_both_views_are_put_together_from_the_shipped_files() -> None:
    """anywidget gets one module and Colab one classic script, each with the shared view inlined once."""
    module, script = frontend.module("board.js"), frontend.script("colab_board.js")
    for source in (module, script):
        assert "import {" not in source and source.count("function drawHeader(") == 1
    assert "export " not in script
    for source, suffix in ((module, ".mjs"), (script, ".js")):
        path = Path(subprocess.run(["mktemp", "--suffix", suffix], capture_output=True, text=True).stdout.strip())
        try:
            path.write_text(source)
            checked = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, timeout=60)
            assert checked.returncode == 0, checked.stderr
        finally:
            path.unlink()


def _details(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator(".nbboard-details").inner_text()


def _shape(text: str) -> str:
    return re.sub(r"\d+", "N", text)


@pytest.mark.parametrize("age", [45, 7200, 90000])
def test_colabs_header_keeps_its_format_on_its_first_tick(tmp_path: Path, age: int) -> None:
    """A board up for exactly 2 h used to say "up 2 h" in Colab's markup, then "up 2 h 0 min" a second later,
    once the browser's clock took over. Both now come from the same words, and the script's first drawing is
    the markup's."""
    started = time.time() - age
    view = colab.ColabView(status="running", port=6006, pid=42, logdir="logs", started_at=started)
    with chromium(tmp_path) as browser:
        bare = browser.new_page(java_script_enabled=False)
        bare.set_content(view.html())
        markup = _details(bare)
        page = browser.new_page()
        page.set_content(view.html())
        first = _details(page)
        page.wait_for_timeout(1600)
        ticked = _details(page)
    assert markup.startswith("port 6006 · pid 42 · up ")
    assert first == markup or _shape(first) == _shape(markup)  # the same words (a second may have passed)
    assert _shape(ticked) == _shape(markup), (markup, ticked)


@pytest.mark.parametrize(
    "state",
    [
        {"status": "starting", "logdir": "logs", "started_at": 1.0},
        {"status": "failed", "error": "Traceback …\nModuleNotFoundError: x", "logdir": "logs"},
        {"status": "stopped", "note": "stopped TensorBoard on port 6006 (pid 42)", "port": 6006, "pid": 42},
        {"status": "stopped", "port": 6006, "pid": 42},
        {"status": "stale", "port": 6006, "pid": 42},
        {"status": "running", "port": 6006, "pid": 42, "logdir": "logs", "started_at": 1.0},
    ],
)
def test_colabs_markup_says_what_the_shared_view_draws(tmp_path: Path, state: dict) -> None:
    """Colab's markup is for readers without scripts; the shared view redraws it at once. Both must agree."""
    if state.get("started_at"):
        state = {**state, "started_at": time.time() - 30}
    view = colab.ColabView(kernel_user="me", kernel_host="box", **state)
    with chromium(tmp_path) as browser:
        seen = []
        for scripts in (False, True):
            page = browser.new_page(java_script_enabled=scripts)
            page.set_content(view.html())
            seen.append(
                [
                    _shape(page.locator(".nbboard-state").inner_text()),
                    _shape(page.locator(".nbboard-title").inner_text()),
                    _shape(_details(page)),
                    page.locator(".nbboard-details").get_attribute("title"),
                    _shape(page.locator(".nbboard-body").inner_text()),
                ]
            )
    assert seen[0] == seen[1]
