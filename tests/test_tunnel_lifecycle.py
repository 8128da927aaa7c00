"""A tunnel's life with its board: reuse, stop and kill, the helper closing it when the board dies, idles or its
TTL ends, bad input, the magic, and providers that cannot be reached (real localtunnel server on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests

import nbboard
from nbboard import registry
from tests.helpers import nbboard_cli
from tests.localtunnel_server import LocaltunnelServer
from tests.tunnel_helpers import SCALARS, helper_processes, login, open_tunnel, secret_in


def test_second_request_reuses_the_tunnel_and_stop_and_kill_close_it(lt: LocaltunnelServer, demo_logs: Path) -> None:
    first = open_tunnel(demo_logs)
    again = open_tunnel(demo_logs)
    assert again["reused"] is True and again["url"] == first["url"]
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)

    result = nbboard_cli("tunnel", "--stop", "--port", str(inst.port))
    assert (
        result.returncode == 0 and f"closed the localtunnel tunnel of TensorBoard on port {inst.port}" in result.stdout
    )
    assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE
    (still,) = nbboard.list()
    assert still.status == "running" and still.tunnel is None
    assert list((Path(os.environ["NBBOARD_HOME"]) / "secrets").iterdir()) == []

    open_tunnel(demo_logs)
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    report = nbboard.kill()
    assert [i.pid for i in report.stopped] == [inst.pid]
    assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE
    assert list(registry.ensure_home().joinpath("tunnels").glob("pid-*.json")) == []


def test_helper_closes_the_tunnel_when_tensorboard_dies_or_ttl_ends(
    lt: LocaltunnelServer, demo_logs: Path, tmp_path: Path
) -> None:
    open_tunnel(demo_logs, "--ttl", "2s")
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    helper.wait(15)  # TTL 2 s + one liveness period
    (after,) = nbboard.list()
    assert after.status == "running" and after.tunnel is None

    other = tmp_path / "other"
    other.mkdir()
    open_tunnel(other)
    board = next(i for i in nbboard.list() if i.logdir == str(other))
    helper = psutil.Process(board.tunnel.helper_pid)
    os.kill(board.pid, signal.SIGKILL)
    helper.wait(15)


def test_an_idle_board_behind_a_tunnel(lt: LocaltunnelServer, demo_logs: Path) -> None:
    """The owner's visits through the public link keep an --idle-timeout board alive; the helper's own checks and
    tokenless visitors (answered by the gate, never forwarded) do not; when the board stops itself the tunnel closes."""
    started = nbboard_cli("start", "--logdir", str(demo_logs), "--idle-timeout", "4s", "--json")
    assert started.returncode == 0, started.stderr
    url = open_tunnel(demo_logs)["url"]
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    cookies = login(lt, url)
    until = time.monotonic() + 7
    while time.monotonic() < until:  # past the idle time, with the owner looking
        assert lt.get(url, SCALARS, cookies=cookies).status_code == 200
        time.sleep(1)
    assert nbboard.list()[0].status == "running"

    def board_running() -> bool:  # a zombie counts as stopped: its reaper (pid 1 here) may take its time
        try:
            return psutil.Process(inst.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    stranger_until = time.monotonic() + 12
    while time.monotonic() < stranger_until and board_running():
        try:
            status = lt.get(url, SCALARS, timeout=5).status_code
        except requests.RequestException:
            status = None
        if not board_running():
            break  # it stopped itself while the stranger asked: the tunnel is closing, and the server holds the request
        assert status == 401
        time.sleep(0.5)
    helper.wait(15)
    assert not psutil.pid_exists(inst.pid) or psutil.Process(inst.pid).status() == psutil.STATUS_ZOMBIE
    assert nbboard.list() == []
    (note,) = nbboard.scan().ended
    assert note.reason == "stopped after 4 s idle"


def test_a_board_that_stalls_for_a_while_keeps_its_tunnel(lt: LocaltunnelServer, demo_logs: Path) -> None:
    """A board that misses the helper's checks for a few seconds (here SIGSTOPped; on a machine busy with training,
    a TensorBoard reloading a large logdir) keeps its public link: only a board whose process is gone, or that stays
    silent for longer than SILENCE_ALLOWED, closes it."""
    url = open_tunnel(demo_logs)["url"]
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    cookies = login(lt, url)
    board = psutil.Process(inst.pid)
    board.suspend()
    try:
        time.sleep(7)  # three of the helper's checks go unanswered
    finally:
        board.resume()
    assert helper.is_running()
    assert lt.get(url, SCALARS, cookies=cookies).status_code == 200
    (after,) = nbboard.list()
    assert after.tunnel is not None and after.tunnel.helper_pid == helper.pid


def test_unreachable_provider_fails_clearly_and_leaves_nothing(isolated: Path, demo_logs: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = nbboard_cli(
        "tunnel",
        "--logdir",
        str(demo_logs),
        "--provider",
        "localtunnel",
        "--host",
        f"http://127.0.0.1:{dead}",
        "--timeout",
        "20",
    )
    assert result.returncode == 1
    assert (
        f"cannot reach the localtunnel server http://127.0.0.1:{dead}" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert helper_processes() == []
    assert list(registry.ensure_home().joinpath("tunnels").glob("*")) == []
    assert [i.status for i in nbboard.list()] == ["running"]  # the board it started stays, and is listed
    (board,) = nbboard.list()  # issue 21 §4: and the message says so, and how to stop it
    assert f"is still running: a retry reuses it; stop it with: nbboard kill --port {board.port}" in result.stderr


def test_port_without_tensorboard(isolated: Path) -> None:
    result = nbboard_cli("tunnel", "--port", "9", "--provider", "localtunnel")
    assert result.returncode == 1 and "no TensorBoard of yours answers on port 9" in result.stderr


def test_bad_tunnel_input(isolated: Path) -> None:
    for args, says in [
        (["tunnel", "--port", "1", "--ttl", "forever"], "invalid --ttl 'forever'"),
        (["tunnel", "--port", "1", "--provider", "pigeon"], "invalid choice: 'pigeon'"),
        (["tunnel", "--port", "x"], "argument --port: invalid value 'x'"),
        (["tunnel", "--logdir", "a", "--port", "1"], "give --logdir or --port, not both"),
        (["tunnel", "--stop", "--port", "1234"], "no open tunnel for port 1234"),
    ]:
        result = nbboard_cli(*args)
        assert result.returncode in (1, 2) and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_board_tunnel_from_the_magic_keeps_the_secret_out_of_the_notebook(
    lt: LocaltunnelServer, demo_logs: Path, tmp_path: Path
) -> None:
    """Issue 17 item 6: a front end may save the widget's synced state in the .ipynb (JupyterLab's "save widget
    state"), and outputs are saved anyway. No comm_open, comm_msg, display or stream message of a
    ``%board --tunnel`` cell may carry the secret (on the old code the synced ``tunnel_url`` did). The Public link
    button still gets its owner the working link: the front end asks the kernel with a custom message (sent here
    exactly as anywidget's ``model.send`` sends it), and the link it gets back opens the board."""
    from nbboard import api
    from tests.kernel import Kernel, board_comm, widget_state

    k = Kernel(tmp_path)
    try:
        k.text("%load_ext nbboard")
        outs = k.run(f"%board --logdir {demo_logs} --tunnel localtunnel")
        ((_inst, url),) = api.tunnel_urls()
        secret = secret_in(url)
        assert {o["type"] for o in outs} >= {"comm_open", "display_data", "stream"}
        assert secret not in json.dumps(outs)
        state = widget_state(outs)
        assert state["tunnel_open"] is True
        text = "".join(o.get("text", "") for o in outs if o["type"] == "stream")
        assert "opened a localtunnel tunnel" in text
        answer = k.custom(board_comm(outs), {"type": "tunnel_url"})
        assert answer == {"type": "tunnel_url", "url": url}
        cookies = login(lt, answer["url"])
        assert sorted(lt.get(answer["url"], "/data/runs", cookies=cookies).json()) == ["eval", "train"]
        # Re-displaying the board (a re-run of the cell) does not bring it back either.
        again = k.run(f"%board --logdir {demo_logs} --tunnel localtunnel")
        assert "reusing the localtunnel tunnel" in json.dumps(again) and secret not in json.dumps(again)
    finally:
        k.shutdown()


def test_unresolvable_provider_names_the_cause_and_the_kaggle_fix(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    t0 = time.monotonic()
    result = nbboard_cli(
        "tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel", "--host", "http://lt.nbboard-offline.invalid",
        "--timeout", "15",
    )  # fmt: skip
    took = time.monotonic() - t0
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach the localtunnel server http://lt.nbboard-offline.invalid" in result.stderr
    assert "does not resolve" in result.stderr and "turn Internet on in the notebook's settings" in result.stderr
    assert helper_processes() == []
    assert took < 60  # the CLI itself starts TensorBoard first; the tunnel part is bounded by --timeout


def test_a_provider_that_never_answers_fails_within_the_timeout(isolated: Path, demo_logs: Path) -> None:
    """A loopback listener that accepts and never says a word: the error comes within --timeout, not a hang,
    says what happened and what to do."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        nbboard.start(str(demo_logs))  # so the timing below is the tunnel's alone
        t0 = time.monotonic()
        result = nbboard_cli(
            "tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel",
            "--host", f"http://127.0.0.1:{silent.getsockname()[1]}", "--timeout", "4",
        )  # fmt: skip
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach the localtunnel server" in result.stderr and "no answer" in result.stderr
    assert "offline" in result.stderr and "HTTPS_PROXY" in result.stderr  # the fix, outside Kaggle
    assert took < 4 + 5, f"took {took:.1f} s with --timeout 4"
    assert helper_processes() == []
