"""The board on Colab: an HTML/JS output (no widget manager), its URL from ``google.colab.kernel.proxyPort``,
its buttons through ``google.colab.kernel.invokeFunction`` to a callback the kernel registered.

Colab's front end and runtime cannot run here: tests/colab_frontend.py stands in for them and says exactly
what it fakes (a stand-in ``google.colab`` in a real kernel; a notebook page on colab.test that renders each
HTML output in its own sandboxed frame on outputframe.test; proxyPort answering with a forwarding proxy on
kernelport.test; invokeFunction running the callback in the kernel through jupyter_client). Real: the
kernel, ``%board``, the outputs it sends, TensorBoard and Chromium. TensorBoard's own port is barred from
the browser in every browser test: the board reaches it only through proxyPort's URL.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

import nbboard
from nbboard import colab
from tests.browser import chromium, chromium_allowing_third_party_storage
from tests.colab_frontend import ColabFrontEnd, colab_kernel
from tests.helpers import tensorboards_serving
from tests.localtunnel_server import DOMAIN, LocaltunnelServer

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Stands in for a TensorBoard that takes a while to come up (as on a fresh Colab VM), so the browser
# can see the board's progress: the real TensorBoard, 3 s late, in the same process.
SLOW_TENSORBOARD = """import runpy, time
time.sleep(3)
runpy.run_module("tensorboard.main", run_name="__main__", alter_sys=True)
"""
# Stands in for a TensorBoard that dies while importing (tensorboard 2.19 on a Python without setuptools):
# a second of imports, then Python prints the traceback and exits with code 1.
BROKEN_TENSORBOARD = """import time
print("TensorBoard 2.19.0 is starting", flush=True)
time.sleep(1)
raise ModuleNotFoundError("No module named 'pkg_resources'")
"""


def _tensorboard_command(tmp_path: Path, name: str, source: str) -> str:
    script = tmp_path / name
    script.write_text(source)
    return f"{sys.executable} {script}"


@pytest.fixture
def colab_front(isolated: Path, tmp_path: Path) -> Iterator[Callable[..., ColabFrontEnd]]:
    """Make a Colab front end over a fresh stand-in kernel (``env``: for that kernel only) with nbboard loaded."""
    made: list[ColabFrontEnd] = []

    def make(**env: str) -> ColabFrontEnd:
        front = ColabFrontEnd(colab_kernel(tmp_path, env))
        made.append(front)
        errors = [o for o in front.run_cell("%load_ext nbboard") if o["type"] == "error"]
        assert not errors, errors
        return front

    yield make
    for front in made:
        front.close()
        front.kernel.shutdown()


def _bar_all_but_the_front_end(context: Any, front: ColabFrontEnd, *domains: str) -> list[str]:
    """Let the browser reach the stand-in's sites (and ``domains``) only: TensorBoard's own port is refused."""
    refused: list[str] = []

    def route(r: Any) -> None:
        allowed = {front.port} | {p.port for p in front.proxies.values()}
        url = urlsplit(r.request.url)
        if url.port in allowed or any((url.hostname or "").endswith(f".{d}") for d in domains):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return refused


def _only(outputs: list[dict], kind: str) -> list[dict]:
    return [o for o in outputs if o["type"] == kind]


def _drawn_states(outputs: list[dict]) -> list[str]:
    """The state each board output of a cell was drawn in, in order (its first display, then each update)."""
    import re

    states = []
    for o in outputs:
        if o["type"] in ("display_data", "update_display_data") and "text/html" in o.get("data", {}):
            found = re.search(r'<div class="nbboard nbboard-colab" data-state="([^"]*)"', o["data"]["text/html"])
            if found:
                states.append(found[1])
    return states


def test_board_cell_sends_one_html_output_updated_in_place_and_no_widget(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path
) -> None:
    front = colab_front()
    outs = front.run_cell(f"%board --logdir {demo_logs}")
    (shown,) = _only(outs, "display_data")  # exactly one display for the cell
    updates = _only(outs, "update_display_data")
    assert not _only(outs, "comm_open") and not _only(outs, "comm_msg")  # no widget, no comm
    assert all(WIDGET_VIEW not in o["data"] and "text/html" in o["data"] for o in [shown, *updates])
    display_id = shown["transient"]["display_id"]
    assert updates and {u["transient"]["display_id"] for u in updates} == {display_id}
    assert 'data-state="starting"' in shown["data"]["text/html"]
    assert "Starting TensorBoard for" in shown["data"]["text/html"]  # progress while TensorBoard starts
    (inst,) = nbboard.list()
    last = updates[-1]["data"]["text/html"]
    assert 'data-state="running"' in last and f"port {inst.port}" in last and f"pid {inst.pid}" in last
    assert (
        updates[-1]["data"]["text/plain"] == f"TensorBoard running on port {inst.port} (pid {inst.pid}) for {demo_logs}"
    )

    assert _drawn_states(outs)[0] == "starting" and _drawn_states(outs)[-1] == "running"
    again = front.run_cell(f"%board --logdir {demo_logs}")  # reused: a new output, already running
    (reshown,) = _only(again, "display_data")
    assert set(_drawn_states(again)) == {"running"} and not _only(again, "comm_open")
    assert reshown["transient"]["display_id"] != display_id
    assert len(tensorboards_serving(demo_logs)) == 1
    # The Colab path needs no widget library at all.
    assert front.kernel.text("import sys; print('anywidget' in sys.modules)").strip() == "False"


#: Stands in for a busy machine, inside the kernel: every start (a reuse included) answers 0.3 s late.
SLOW_REUSE = """import time, nbboard.api as _api
_start = _api.start
def _late(*args, **kwargs):
    time.sleep(0.3)
    return _start(*args, **kwargs)
_api.start = _late
"""


def test_a_reused_board_is_drawn_running_from_its_first_frame(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path
) -> None:
    """Right after a reuse, Colab's output shows the running board at once: never "starting" first, also
    when the reuse is slowed by a busy machine (stood in for by delaying nbboard's start in the kernel)."""
    front = colab_front()
    first = front.run_cell(f"%board --logdir {demo_logs}")
    assert _drawn_states(first)[-1] == "running"
    quick = front.run_cell(f"%board --logdir {demo_logs}")
    assert _drawn_states(quick) and set(_drawn_states(quick)) == {"running"}, _drawn_states(quick)
    assert not [o for o in front.run_cell(SLOW_REUSE) if o["type"] == "error"]
    slow = front.run_cell(f"%board --logdir {demo_logs}")
    assert _drawn_states(slow) and set(_drawn_states(slow)) == {"running"}, _drawn_states(slow)
    assert len(tensorboards_serving(demo_logs)) == 1


def test_board_shows_tensorboard_through_proxy_port_and_stop_stops_it(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path, tmp_path: Path, artifacts: Path
) -> None:
    """The browser lets the cross-site TensorBoard frame use storage (as Chrome's default profile and a site
    exception do): TensorBoard (under its --path_prefix) shows its data inside the output, and Stop stops the
    real process."""
    front = colab_front(NBBOARD_TENSORBOARD=_tensorboard_command(tmp_path, "slow_tensorboard.py", SLOW_TENSORBOARD))
    with chromium_allowing_third_party_storage(tmp_path, front.chromium_args()) as context:
        refused = _bar_all_but_the_front_end(context, front)
        page = context.new_page()
        page.set_viewport_size({"width": 1400, "height": 1200})
        front.open(page)
        cell = front.start_cell(f"%board --logdir {demo_logs} --height 600 --path_prefix /tb\nprint('after the board')")
        output = page.frame_locator("#cell-1 iframe.output-frame")
        output.locator(".nbboard[data-state='starting']").wait_for(timeout=60_000)
        assert "Starting TensorBoard for" in output.locator(".nbboard-body").inner_text()
        output.locator(".nbboard[data-state='running']").wait_for(timeout=120_000)
        cell.join(120)
        board = output.frame_locator("iframe.nbboard-frame")
        board.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)  # TensorBoard's scalar card
        (inst,) = nbboard.list()
        proxy = f"http://kernelport.test:{front.proxies[inst.port].port}/tb/?tensorboardColab=true"
        assert output.locator("iframe.nbboard-frame").get_attribute("src") == proxy
        assert output.locator(".nbboard-open").get_attribute("href") == proxy
        header = output.locator(".nbboard-header").inner_text()
        for part in (str(demo_logs), f"port {inst.port}", f"pid {inst.pid}", "up ", "Open in tab", "Reload", "Stop"):
            assert part in header
        assert output.locator(".nbboard-state").text_content() == "running"
        assert page.locator("#cell-1 iframe.output-frame").count() == 1  # one output, updated in place
        assert "after the board" in page.locator("#cell-1").inner_text()
        page.wait_for_timeout(1500)  # let the charts draw for the screenshot
        page.locator("#cell-1 iframe.output-frame").screenshot(path=str(artifacts / "board-colab.png"))

        output.locator(".nbboard-stop").click()
        output.locator(".nbboard[data-state='stopped']").wait_for(timeout=60_000)
        assert (
            f"stopped TensorBoard on port {inst.port} (pid {inst.pid})" in output.locator(".nbboard-body").inner_text()
        )
        assert [(i["name"], i["args"][1]) for i in front.invocations] == [(colab.CALLBACK, "stop")]
        assert refused == []  # TensorBoard was reached through proxyPort's URL only
    assert not psutil.pid_exists(inst.pid) or psutil.Process(inst.pid).status() == psutil.STATUS_ZOMBIE
    assert nbboard.list() == []


def test_browser_refusing_third_party_storage_gets_the_reason_and_a_tab_that_works(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path, tmp_path: Path, artifacts: Path
) -> None:
    """Chromium's default settings here refuse storage to cross-site frames, as incognito windows and
    privacy settings do. TensorBoard in the output's frame then shows only "Data could not be loaded":
    the board says why instead, and its "Open in tab" shows the data."""
    front = colab_front()
    with chromium(tmp_path, front.chromium_args()) as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        refused = _bar_all_but_the_front_end(context, front)
        page = context.new_page()
        front.open(page)
        front.run_cell(f"%board --logdir {demo_logs}")
        output = page.frame_locator("#cell-1 iframe.output-frame")
        blocked = output.locator(".nbboard-blocked")
        blocked.wait_for(timeout=60_000)
        text = blocked.inner_text()
        assert "third-party cookies are blocked" in text and "TensorBoard cannot load here" in text
        assert "allow third-party cookies for this site" in text and "%board --tunnel" in text
        assert output.locator("iframe.nbboard-frame").count() == 0  # no blank board
        page.locator("#cell-1 iframe.output-frame").screenshot(path=str(artifacts / "board-colab-blocked.png"))
        (inst,) = nbboard.list()
        proxy = f"http://kernelport.test:{front.proxies[inst.port].port}/?tensorboardColab=true"

        with page.expect_popup() as opened:
            output.locator(".nbboard-open-tab").click()
        tab = opened.value
        assert tab.url == proxy
        tab.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)

        # The diagnosis is right: shown in the output anyway, TensorBoard cannot load its data.
        output.locator(".nbboard-anyway").click()
        inside = output.frame_locator("iframe.nbboard-frame")
        inside.get_by_text("Data could not be loaded").first.wait_for(timeout=90_000)
        assert refused == []


def test_failed_start_is_readable_text_in_the_cell_and_in_the_output(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path, tmp_path: Path, artifacts: Path
) -> None:
    """TensorBoard's own last words reach the user twice: in the board's output and as the cell's text after
    it (printed, or as the cell's one-line error where %board marks its cell failed), never hidden by it."""
    front = colab_front(NBBOARD_TENSORBOARD=_tensorboard_command(tmp_path, "broken_tensorboard.py", BROKEN_TENSORBOARD))
    with chromium(tmp_path, front.chromium_args()) as browser:
        page = browser.new_page()
        front.open(page)
        outs = front.run_cell(f"%board --logdir {demo_logs}")
        (shown,) = _only(outs, "display_data")
        after = [o for o in outs[outs.index(shown) + 1 :] if o["type"] in ("stream", "error")]
        said = "".join(o["text"] if o["type"] == "stream" else f"{o['ename']}: {o['evalue']}" for o in after)
        assert "TensorBoard exited with code 1 before it was ready" in said
        assert "ModuleNotFoundError: No module named 'pkg_resources'" in said

        cell = page.locator("#cell-1")
        text = cell.locator("pre").last
        text.wait_for(timeout=30_000)
        assert "ModuleNotFoundError: No module named 'pkg_resources'" in text.inner_text()
        assert cell.locator(":scope > iframe.output-frame + pre").count() == 1  # the text comes right after the board
        output = page.frame_locator("#cell-1 iframe.output-frame")
        output.locator(".nbboard[data-state='failed']").wait_for(timeout=30_000)
        error = output.locator(".nbboard-error").inner_text()
        assert "Traceback (most recent call last)" in error
        assert "ModuleNotFoundError: No module named 'pkg_resources'" in error
        assert output.locator(".nbboard-stop").is_disabled()
        cell.screenshot(path=str(artifacts / "board-colab-failed.png"))
    assert nbboard.list() == []


def test_after_a_runtime_restart_the_old_output_says_what_to_do(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path, tmp_path: Path
) -> None:
    """A restarted runtime has forgotten the board's callback: Stop says so (and stops nothing by guesswork);
    reopened, the saved output asks for the cell to run again instead of reaching for the kernel's ports."""
    front = colab_front()
    with chromium(tmp_path, front.chromium_args()) as browser:
        page = browser.new_page()
        front.open(page)
        front.run_cell(f"%board --logdir {demo_logs}")
        output = page.frame_locator("#cell-1 iframe.output-frame")
        output.locator(".nbboard-blocked").wait_for(timeout=60_000)  # running (default Chromium: shown in a tab)
        front.kernel.restart()
        output.locator(".nbboard-stop").click()
        note = output.locator(".nbboard-note")
        note.wait_for(timeout=60_000)
        text = note.inner_text()
        assert "Function not found: nbboard.board" in text and "If the runtime restarted, run the cell again." in text
        assert output.locator(".nbboard-stop").is_enabled()
        assert [i.status for i in nbboard.list()] == ["running"]  # TensorBoard outlives the kernel, as it does on Colab

        calls = len(front.proxy_calls)
        page.reload()  # the notebook reopened: its outputs are saved ones now
        page.wait_for_function("window.loaded === true", timeout=30_000)
        output = page.frame_locator("#cell-1 iframe.output-frame")
        stale = output.locator(".nbboard-stale")
        stale.wait_for(timeout=30_000)
        assert stale.inner_text() == "This output is from an earlier session: run the cell again to show the board."
        assert output.locator(".nbboard-actions").is_hidden() and output.locator("iframe").count() == 0
        assert len(front.proxy_calls) == calls


def test_public_link_and_close_link_run_in_the_kernel_and_the_secret_stays_out_of_the_output(
    colab_front: Callable[..., ColabFrontEnd], demo_logs: Path, tmp_path: Path
) -> None:
    """A real localtunnel server on loopback carries the tunnel. Colab saves outputs with the notebook, so the
    link's secret must never be in one: the output fetches it from the kernel when Public link is pressed."""
    from nbboard import api

    lt = LocaltunnelServer(tmp_path)
    try:
        front = colab_front(NBBOARD_LOCALTUNNEL_HOST=lt.url)
        with chromium(tmp_path, front.chromium_args(f"MAP *.{DOMAIN} 127.0.0.1:{lt.port}")) as browser:
            context = browser.new_context()
            refused = _bar_all_but_the_front_end(context, front, DOMAIN)
            page = context.new_page()
            front.open(page)
            front.run_cell(f"%board --logdir {demo_logs} --tunnel localtunnel")
            ((inst, public),) = api.tunnel_urls()
            secret = public.split("nbboard_token=", 1)[1]
            assert secret not in json.dumps(front.messages)  # not in any output, update or print of the cell

            output = page.frame_locator("#cell-1 iframe.output-frame")
            output.locator(".nbboard-tunnel").wait_for(timeout=60_000)
            with page.expect_popup() as opened:
                output.locator(".nbboard-tunnel").click()
            opened.value.get_by_text("loss", exact=True).first.wait_for(
                timeout=90_000
            )  # TensorBoard, through the tunnel

            output.locator(".nbboard-close-tunnel").click()
            output.locator(".nbboard-note").wait_for(timeout=60_000)
            assert output.locator(".nbboard-note").inner_text() == "nbboard: closed the public link"
            assert (
                output.locator(".nbboard-tunnel").count() == 0 and output.locator(".nbboard-close-tunnel").count() == 0
            )
            assert [(i["name"], i["args"][1]) for i in front.invocations] == [
                (colab.CALLBACK, "tunnel_url"),
                (colab.CALLBACK, "close_tunnel"),
            ]
            ((board),) = nbboard.list()
            assert board.pid == inst.pid and board.status == "running" and board.tunnel is None
            assert secret not in json.dumps(front.messages)
            assert refused == []
    finally:
        nbboard.kill()
        lt.stop()


def test_the_kernel_callback_refuses_what_no_board_of_this_kernel_asked() -> None:
    """invokeFunction is reachable from any output of the session: arguments are checked, never trusted."""
    stopped: list[str] = []
    view = colab.ColabView(actions={"stop": lambda: stopped.append("stop")}, logdir="logs")
    for view_id, action in [("nope", "stop"), (["list"], "stop"), (None, None), ("x" * 100_000, "stop")]:
        assert "run the cell again" in colab.answer(view_id, action)["error"]
    for action in ("rm -rf /", "__init__", {"type": "stop"}, 42):
        assert "unknown action" in colab.answer(view.view_id, action)["error"]
    assert colab.answer(view.view_id, "tunnel_url") == {"error": "the public link is closed"}
    assert stopped == []
    assert colab.answer(view.view_id, "stop")["html"].startswith('<div class="nbboard nbboard-colab"')
    assert stopped == ["stop"]


def test_many_boards_keep_the_kernels_table_of_outputs_bounded() -> None:
    """Issue 20, item 9: every board output registers its buttons with the kernel. A long session that shows
    a board again and again (each re-run of a cell is a new output) must not keep every output alive: boards
    that ended are forgotten at once, and only the newest ``KEEP_VIEWS`` outputs keep working buttons."""
    import gc
    import weakref

    colab._views.clear()
    made = []
    for _ in range(1000):
        view = colab.ColabView(actions={"stop": lambda: None}, status="running", pid=1, port=1)
        made.append((view.view_id, weakref.ref(view)))
    del view
    gc.collect()
    assert len(colab._views) == colab.KEEP_VIEWS
    assert sum(ref() is not None for _, ref in made) == colab.KEEP_VIEWS  # the others' memory is freed
    oldest, newest = made[0][0], made[-1][0]
    assert "run the cell again" in colab.answer(oldest, "stop")["error"]
    assert "html" in colab.answer(newest, "stop")
    colab._views[newest].status = "stopped"  # ended: its output's Stop is disabled, nothing to answer for
    assert newest not in colab._views and len(colab._views) == colab.KEEP_VIEWS - 1
    colab._views.clear()


def test_hostile_names_stay_text_in_the_output() -> None:
    view = colab.ColabView(logdir="</script><img src=x onerror=alert(1)>", status="failed", error="<b>&</b></SCRIPT>")
    page = view.html()
    assert "<img" not in page and "<b>" not in page
    assert page.lower().count("</script>") == 2  # the config's and the front end's own, nothing injected
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_colab_front_end_ships_inside_the_package() -> None:
    """From a wheel (tests/matrix.py sets NBBOARD_MATRIX_CHECKOUT) the script must come from nbboard/static."""
    import os

    from nbboard import frontend

    path = frontend.static("colab_board.js")
    assert "google.colab.kernel" in path.read_text(encoding="utf-8")
    if os.environ.get("NBBOARD_MATRIX_CHECKOUT"):
        assert path == Path(colab.__file__).resolve().parent / "static" / "colab_board.js"
