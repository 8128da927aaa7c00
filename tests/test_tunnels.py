"""Tunnels through a real localtunnel server on 127.0.0.1, in front of a real TensorBoard."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest

import nbboard
from nbboard import cli, registry
from tests.browser import chromium
from tests.helpers import nbboard_cli
from tests.localtunnel_server import DOMAIN, LocaltunnelServer

SCALARS = "/data/plugin/scalars/scalars?run=train&tag=loss"


@pytest.fixture
def lt(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocaltunnelServer]:
    server = LocaltunnelServer(tmp_path)
    monkeypatch.setenv("NBBOARD_LOCALTUNNEL_HOST", server.url)
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    yield server
    nbboard.kill()
    server.stop()


def _open(demo_logs: Path, *extra: str) -> dict:
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--provider", "localtunnel", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _helpers() -> list[psutil.Process]:
    """Tunnel helpers of this test's registry (their argv names a spec file inside it)."""
    home = os.environ["NBBOARD_HOME"]
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if "nbboard.tunnels.helper" in " ".join(p.info["cmdline"] or []) and home in " ".join(p.info["cmdline"] or [])
    ]


def _secret(url: str) -> str:
    return parse_qs(urlsplit(url).query)["nbboard_token"][0]


def _login(lt: LocaltunnelServer, url: str) -> dict[str, str]:
    """Visit the printed link once; returns the cookie the gate set."""
    resp = lt.get(url, "/?" + urlsplit(url).query)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    name, _, rest = resp.headers["Set-Cookie"].partition("=")
    return {name: rest.split(";", 1)[0]}


def test_public_url_serves_tensorboard_only_with_the_secret(lt: LocaltunnelServer, demo_logs: Path) -> None:
    opened = _open(demo_logs)
    url = opened["url"]
    assert urlsplit(url).hostname.endswith("." + DOMAIN)
    secret = _secret(url)
    assert len(secret) >= 22  # ≥ 128 bits, URL-safe base64

    denied = lt.get(url, SCALARS)
    assert denied.status_code == 401 and "loss" not in denied.text and "wall_time" not in denied.text
    wrong = lt.get(url, SCALARS + "&nbboard_token=" + secret[:-2] + "xx")
    assert wrong.status_code == 403 and "[" not in wrong.text

    cookies = _login(lt, url)
    data = lt.get(url, SCALARS, cookies=cookies).json()
    assert len(data) == 50 and data[-1][1] == 49  # [wall_time, step, value] for every step the demo wrote
    page = lt.get(url, "/", cookies=cookies)
    assert page.status_code == 200 and "<title>TensorBoard</title>" in page.text
    bearer = lt.get(url, "/data/runs", headers={"Authorization": f"Bearer {secret}"})
    assert sorted(bearer.json()) == ["eval", "train"]


def test_the_secret_never_leaks(lt: LocaltunnelServer, demo_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opened = _open(demo_logs)
    secret = _secret(opened["url"])
    for proc in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(proc.info["cmdline"] or []), f"secret in argv of pid {proc.pid}"
    (inst,) = nbboard.list()
    assert inst.tunnel is not None
    assert secret not in Path(inst.tunnel.log_path).read_text()
    assert secret not in Path(inst.log_path).read_text()
    assert cli.main(["list"]) == 0
    assert cli.main(["list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert secret not in listed and "nbboard_token=********" in listed
    secret_file = Path(inst.tunnel.secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert cli.main(["tunnel", "--show-url"]) == 0
    assert secret in capsys.readouterr().out  # its owner can print it again


def test_tunnel_survives_the_server_dropping_connections(lt: LocaltunnelServer, demo_logs: Path) -> None:
    url = _open(demo_logs)["url"]
    cookies = _login(lt, url)
    ok = failed_after_reconnect = 0
    for round_ in range(3):
        deadline = time.monotonic() + 30
        while True:  # wait for the client to reconnect (and re-register after a restart)
            try:
                if lt.get(url, "/data/runs", cookies=cookies).status_code == 200:
                    break
            except Exception:  # noqa: BLE001 - the server is restarting
                pass
            assert time.monotonic() < deadline, f"no reconnection in 30 s after restart {round_}"
            time.sleep(0.2)
        for _ in range(60):
            resp = lt.get(url, SCALARS, cookies=cookies)
            if resp.status_code == 200 and len(resp.json()) == 50:
                ok += 1
            else:
                failed_after_reconnect += 1
        lt.restart()  # every tunnel socket drops; the server forgets the tunnel
    assert (ok, failed_after_reconnect) == (180, 0)


def test_second_request_reuses_the_tunnel_and_stop_and_kill_close_it(lt: LocaltunnelServer, demo_logs: Path) -> None:
    first = _open(demo_logs)
    again = _open(demo_logs)
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

    _open(demo_logs)
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    report = nbboard.kill()
    assert [i.pid for i in report.stopped] == [inst.pid]
    assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE
    assert list(registry.ensure_home().joinpath("tunnels").glob("pid-*.json")) == []


def test_helper_closes_the_tunnel_when_tensorboard_dies_or_ttl_ends(
    lt: LocaltunnelServer, demo_logs: Path, tmp_path: Path
) -> None:
    _open(demo_logs, "--ttl", "2s")
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    helper.wait(15)  # TTL 2 s + one liveness period
    (after,) = nbboard.list()
    assert after.status == "running" and after.tunnel is None

    other = tmp_path / "other"
    other.mkdir()
    _open(other)
    board = next(i for i in nbboard.list() if i.logdir == str(other))
    helper = psutil.Process(board.tunnel.helper_pid)
    os.kill(board.pid, signal.SIGKILL)
    helper.wait(15)


def test_an_idle_board_behind_a_tunnel(lt: LocaltunnelServer, demo_logs: Path) -> None:
    """The owner's visits through the public link keep an --idle-timeout board alive; the helper's own checks and
    tokenless visitors (answered by the gate, never forwarded) do not; when the board stops itself the tunnel closes."""
    started = nbboard_cli("start", "--logdir", str(demo_logs), "--idle-timeout", "4s", "--json")
    assert started.returncode == 0, started.stderr
    url = _open(demo_logs)["url"]
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    cookies = _login(lt, url)
    until = time.monotonic() + 7
    while time.monotonic() < until:  # past the idle time, with the owner looking
        assert lt.get(url, SCALARS, cookies=cookies).status_code == 200
        time.sleep(1)
    assert nbboard.list()[0].status == "running"
    stranger_until = time.monotonic() + 12
    while time.monotonic() < stranger_until and psutil.pid_exists(inst.pid):
        assert lt.get(url, SCALARS).status_code == 401
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
    url = _open(demo_logs)["url"]
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    cookies = _login(lt, url)
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


def test_tunnel_in_headless_chromium(lt: LocaltunnelServer, demo_logs: Path, tmp_path: Path, artifacts: Path) -> None:
    url = _open(demo_logs)["url"]
    with chromium(tmp_path, (f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1:{lt.port}",)) as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.get_by_text("loss", exact=True).first.wait_for(timeout=90_000)
        assert "nbboard_token" not in page.url  # the secret left the address bar
        page.screenshot(path=str(artifacts / "tunnel.png"))
        bare = browser.new_page()
        bare.goto(url.split("?")[0])
        assert "This TensorBoard is private" in bare.content()


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
    assert _helpers() == []
    assert list(registry.ensure_home().joinpath("tunnels").glob("*")) == []
    assert [i.status for i in nbboard.list()] == ["running"]  # the board it started stays, and is listed
    (board,) = nbboard.list()  # issue 21 §4: and the message says so, and how to stop it
    assert f"is still running: a retry reuses it; stop it with: nbboard kill --port {board.port}" in result.stderr


def test_port_without_tensorboard(isolated: Path) -> None:
    result = nbboard_cli("tunnel", "--port", "9", "--provider", "localtunnel")
    assert result.returncode == 1 and "no TensorBoard of yours answers on port 9" in result.stderr


def test_ngrok_without_a_token_says_where_to_get_one(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--provider", "ngrok")
    assert result.returncode == 1
    for needle in (
        "no ngrok auth token found",
        "dashboard.ngrok.com",
        "NGROK_AUTHTOKEN",
        "--authtoken",
        "Colab",
        "--provider localtunnel",
    ):
        assert needle in result.stderr


def test_ngrok_token_is_saved_privately_and_never_printed(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ngrok's cloud cannot be reached here: the agent download fails for real, and that error is what we check."""
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # pyngrok keeps its agent under ~/.config/ngrok
    token = "2abcDEFghiJKLmnoPQRstuVWxyz_0123456789abcdefGHIJ"
    import subprocess
    import sys

    saved = subprocess.run(
        [sys.executable, "-m", "nbboard", "tunnel", "--authtoken", "-"],
        input=token + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert saved.returncode == 0 and token not in saved.stdout + saved.stderr
    path = Path(os.environ["NBBOARD_HOME"]) / "ngrok.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text())["authtoken"] == token

    result = nbboard_cli("tunnel", "--logdir", str(demo_logs))  # auto: a token exists, so ngrok
    assert result.returncode == 1
    assert "using ngrok (auth token from nbboard's saved token)" in result.stderr
    assert "could not download the ngrok agent" in result.stderr and "--provider localtunnel" in result.stderr
    assert token not in result.stdout + result.stderr
    assert _helpers() == []


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
        secret = _secret(url)
        assert {o["type"] for o in outs} >= {"comm_open", "display_data", "stream"}
        assert secret not in json.dumps(outs)
        state = widget_state(outs)
        assert state["tunnel_open"] is True
        text = "".join(o.get("text", "") for o in outs if o["type"] == "stream")
        assert "opened a localtunnel tunnel" in text
        answer = k.custom(board_comm(outs), {"type": "tunnel_url"})
        assert answer == {"type": "tunnel_url", "url": url}
        cookies = _login(lt, answer["url"])
        assert sorted(lt.get(answer["url"], "/data/runs", cookies=cookies).json()) == ["eval", "train"]
        # Re-displaying the board (a re-run of the cell) does not bring it back either.
        again = k.run(f"%board --logdir {demo_logs} --tunnel localtunnel")
        assert "reusing the localtunnel tunnel" in json.dumps(again) and secret not in json.dumps(again)
    finally:
        k.shutdown()


FAKE_NGROK = Path(__file__).resolve().parent / "stubs" / "fake_ngrok.py"


def test_ngrok_path_through_a_stand_in_agent(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ngrok's agent and cloud cannot run here: tests/stubs/fake_ngrok.py stands in for both (its docstring
    says how). What is real: pyngrok driving it, nbboard's helper, gate and records, and the checks that the
    token reaches the agent through its environment (never argv) and that the endpoint points at the gate."""
    record_file = tmp_path / "agent.jsonl"
    token = "2fakeTokenForTheStandInAgent_abcdefghijklmnop"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # pyngrok writes its default agent config under ~
    monkeypatch.setenv("NBBOARD_NGROK_PATH", str(FAKE_NGROK))
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(record_file))
    monkeypatch.setenv("NGROK_AUTHTOKEN", token)
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--json")
    assert result.returncode == 0, result.stderr
    assert "using ngrok (auth token from NGROK_AUTHTOKEN)" in result.stderr
    opened = json.loads(result.stdout)
    assert opened["provider"] == "ngrok"
    url = opened["url"]
    calls = [json.loads(line) for line in record_file.read_text().splitlines()]
    starts = [c for c in calls if "start" in c["argv"]]
    assert starts and all(token not in " ".join(c["argv"]) for c in calls)
    assert all(c["env_token"] for c in starts)
    for proc in psutil.process_iter(["cmdline"]):
        assert token not in " ".join(proc.info["cmdline"] or [])
    # Issue 10 item 7: the agent captures nothing (its local API has no authentication).
    configs = [c["config"] for c in calls if "config" in c]
    assert configs and all(c["agent"]["inspect_db_size"] == -1 for c in configs)
    endpoints = [c["options"] for c in calls if "options" in c]
    assert endpoints and all(o["inspect"] is False for o in endpoints)

    (inst,) = nbboard.list()
    base = url.split("?")[0].rstrip("/")
    assert base == inst.tunnel.public_url.rstrip("/") and inst.tunnel.gate_port not in (0, inst.port)
    import requests

    assert requests.get(base + "/data/runs", timeout=10).status_code == 401  # the endpoint is the gate
    s = requests.Session()
    login = s.get(url, allow_redirects=False, timeout=10)
    assert (
        login.status_code == 302
        and "Secure" in login.headers["Set-Cookie"]
        and "SameSite=None" in login.headers["Set-Cookie"]
    )
    assert sorted(
        requests.get(base + "/data/runs", headers={"Authorization": "Bearer " + _secret(url)}, timeout=10).json()
    ) == ["eval", "train"]

    helper = psutil.Process(inst.tunnel.helper_pid)
    agents = [p for p in helper.children(recursive=True) if "fake_ngrok" in " ".join(p.cmdline())]
    assert agents
    # Issue 10 item 9: the token is in the agent's environment, and in no other child's.
    assert all(a.environ().get("NGROK_AUTHTOKEN") == token for a in agents)
    board = psutil.Process(inst.pid)
    for proc in [helper, board, *board.children(recursive=True)]:
        assert "NGROK_AUTHTOKEN" not in proc.environ(), proc.cmdline()
    assert not list((Path(os.environ["NBBOARD_HOME"]) / "secrets").glob("ngrok-*"))  # read once, then deleted
    (agent_config,) = (Path(os.environ["NBBOARD_HOME"]) / "tunnels").glob("ngrok-agent-*.yml")
    assert stat.S_IMODE(agent_config.stat().st_mode) == 0o600 and token not in agent_config.read_text()
    nbboard.kill()
    gone, alive = psutil.wait_procs([helper, *agents], timeout=10)
    assert alive == []
    assert not agent_config.exists()


# ---------------------------------------------------------------------------
# Issue 10 item 5: the cookie through a real https-issuing localtunnel server


def test_cookie_is_secure_and_expires_with_a_localtunnel_tunnel(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """localtunnel.me hands out https URLs but its client sends no X-Forwarded-Proto: the gate must learn
    https from the public URL the provider gave."""
    server = LocaltunnelServer(tmp_path, secure=True)
    monkeypatch.setenv("NBBOARD_LOCALTUNNEL_HOST", server.url)
    try:
        url = _open(demo_logs, "--ttl", "1h")["url"]
        assert url.startswith("https://")
        resp = server.get(url, "/?" + urlsplit(url).query)
        attrs = [a.strip() for a in resp.headers["Set-Cookie"].split(";")]
        assert resp.status_code == 302 and "Secure" in attrs and "SameSite=None" in attrs and "HttpOnly" in attrs
        assert 3540 <= next(int(a.split("=")[1]) for a in attrs if a.startswith("Max-Age=")) <= 3600
    finally:
        nbboard.kill()
        server.stop()


# ---------------------------------------------------------------------------
# Issue 10 item 12 (the soak's failure): a server that stalls right after assigning the tunnel


class Upstream:
    """A plain local service for the client to forward to."""

    def __enter__(self) -> int:
        import http.server
        import threading

        class Ok(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_server_that_stalls_after_assigning_the_tunnel_does_not_kill_it(
    lt: LocaltunnelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a loaded machine did to the soak test (776 requests failed, 0 served): the server assigned the
    tunnel, then could not process the client's connections within its 1 s grace, forgot the tunnel and reset
    them. The reset killed every connection slot of the client (ConnectionResetError escaped them), so no slot
    ever asked again and every request got the server's fast 404. SIGSTOP on the real server reproduces it.

    Now the slots survive resets, any slot re-registers, and ``open`` reports the tunnel ready only once the
    server says it sees a connection: the first request after it is served."""
    import asyncio
    import threading

    import requests

    from nbboard.tunnels import localtunnel, providers

    real = localtunnel.request_tunnel
    stalls = []

    def stall_after_assigning(*args: object, **kwargs: object) -> localtunnel.Assignment:
        assignment = real(*args, **kwargs)  # type: ignore[arg-type]
        if not stalls:
            os.kill(lt.proc.pid, signal.SIGSTOP)
            stalls.append(threading.Timer(1.6, os.kill, (lt.proc.pid, signal.SIGCONT)))
            stalls[0].start()
        return assignment

    monkeypatch.setattr(localtunnel, "request_tunnel", stall_after_assigning)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    with Upstream() as port:
        settings = providers.Settings(deadline=time.monotonic() + 30, host=lt.url)
        url, close = asyncio.run_coroutine_threadsafe(localtunnel.open(port, settings), loop).result(40)
        try:
            assert stalls, "the server was never stalled"
            first = lt.get(url, "/")
            assert first.status_code == 200 and first.text == "ok"  # the very first request, no retry
            tunnel_id = urlsplit(url).hostname.split(".")[0]
            status = requests.get(f"{lt.url}/api/tunnels/{tunnel_id}/status", timeout=10).json()
            assert status["connected_sockets"] >= 1
            assert all(lt.get(url, "/").status_code == 200 for _ in range(20))
        finally:
            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)


def test_client_connections_survive_resets_and_rejoin(lt: LocaltunnelServer) -> None:
    """The same failure without timing: the client is pointed at a tunnel port that accepts and resets, then
    closes (what a server that forgot the tunnel does). On main every slot died at the first reset."""
    import asyncio
    import dataclasses
    import socket
    import struct
    import threading

    from nbboard.tunnels import localtunnel

    resetter = socket.socket()
    resetter.bind(("127.0.0.1", 0))
    resetter.listen(64)

    def reset_all() -> None:
        end = time.monotonic() + 1.5  # longer than the server's 1 s grace: it forgets the real tunnel meanwhile
        resetter.settimeout(0.1)
        while time.monotonic() < end:
            try:
                conn, _ = resetter.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # a reset, not a clean close
        resetter.close()  # from now on: connection refused

    threading.Thread(target=reset_all, daemon=True).start()
    real = localtunnel.request_tunnel(lt.url)
    doomed = dataclasses.replace(real, remote_port=resetter.getsockname()[1])
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    with Upstream() as port:
        client = localtunnel.LocalTunnelClient(lt.url, port, doomed)
        task = asyncio.run_coroutine_threadsafe(client.run(), loop)
        try:
            deadline = time.monotonic() + 20
            while client.assignment is doomed:
                assert time.monotonic() < deadline, "the client never asked the server again after the resets"
                time.sleep(0.1)
            while lt.get(real.url, "/").status_code != 200:
                assert time.monotonic() < deadline, "the client never rejoined the server after the resets"
                time.sleep(0.2)
            assert client.assignment.url == real.url  # the same public URL, asked for again
        finally:
            loop.call_soon_threadsafe(client.stop)
            task.result(10)
            loop.call_soon_threadsafe(loop.stop)


def test_ngrok_token_never_lands_in_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20, item 9: the helper hands the token to the agent it starts, as that agent's environment, without
    writing it into ``os.environ`` from the worker thread that runs pyngrok (where, for as long as the agent took
    to start, every other process the helper started would have inherited it). The agent and ngrok's cloud are
    tests/stubs/fake_ngrok.py (they cannot run here); pyngrok driving it, in a worker thread, is real."""
    import threading

    from pyngrok import conf
    from pyngrok import ngrok as pyngrok

    from nbboard.tunnels import ngrok

    token = "2fakeTokenNeverInOsEnviron_abcdefghijklmnop"
    record = tmp_path / "agent.jsonl"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(record))
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    written: list[str] = []

    class Watched(dict):  # os.environ, noting every name written into it
        def __setitem__(self, key: str, value: str) -> None:
            written.append(key)
            super().__setitem__(key, value)

    monkeypatch.setattr(os, "environ", Watched(os.environ))
    config_path = tmp_path / "agent.yml"
    config_path.write_text(ngrok.AGENT_CONFIG)
    cfg = conf.PyngrokConfig(
        monitor_thread=False, log_event_callback=None, config_path=str(config_path), ngrok_path=str(FAKE_NGROK)
    )
    urls: list[str] = []
    worker = threading.Thread(target=lambda: urls.append(ngrok._connect(cfg, 9, token)))
    try:
        worker.start()
        worker.join(60)
        assert urls and urls[0].startswith("http")
    finally:
        pyngrok.kill(cfg)
    assert "NGROK_AUTHTOKEN" not in written and "NGROK_AUTHTOKEN" not in os.environ
    starts = [c for c in map(json.loads, record.read_text().splitlines()) if "start" in c["argv"]]
    assert starts and all(c["env_token"] for c in starts)  # the agent itself got it


# ---------------------------------------------------------------------------
# Issue 10 item 9: nbboard's secrets stay out of its children's environments


def test_children_never_get_the_ngrok_token(
    lt: LocaltunnelServer, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorBoard, its data server and the tunnel helper start without NGROK_AUTHTOKEN / NGROK_API_KEY (read
    from the real processes' environ), and with everything else (TensorBoard may need cloud credentials)."""
    token = "2canaryTokenThatMustNotTravel_abcdefghijklmnop"
    monkeypatch.setenv("NGROK_AUTHTOKEN", token)
    monkeypatch.setenv("NGROK_API_KEY", "canary-api-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kept-for-s3-logdirs")
    _open(demo_logs)  # --provider localtunnel: the token is set but not needed
    (inst,) = nbboard.list()
    board = psutil.Process(inst.pid)
    children = board.children(recursive=True)
    assert children, "TensorBoard's data server should run as its child"
    for proc in [board, *children, psutil.Process(inst.tunnel.helper_pid)]:
        env = proc.environ()
        assert "NGROK_AUTHTOKEN" not in env and "NGROK_API_KEY" not in env, proc.cmdline()
        assert token not in " ".join(env.values())
        assert env.get("AWS_SECRET_ACCESS_KEY") == "kept-for-s3-logdirs"


# ---------------------------------------------------------------------------
# Issue 10 item 11: the ngrok token need not be on argv


TOKEN = "2abcDEFghiJKLmnoPQRstuVWxyz_0123456789abcdefGHIJ"


def _saved_token() -> str:
    path = Path(os.environ["NBBOARD_HOME"]) / "ngrok.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())["authtoken"]


def test_authtoken_from_a_file(isolated: Path, tmp_path: Path) -> None:
    f = tmp_path / "token.txt"
    f.write_text("\n" + TOKEN + "\n")
    result = nbboard_cli("tunnel", "--authtoken-file", str(f))
    assert result.returncode == 0 and TOKEN not in result.stdout + result.stderr and "warning" not in result.stderr
    assert _saved_token() == TOKEN
    missing = nbboard_cli("tunnel", "--authtoken-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read --authtoken-file" in missing.stderr


def test_authtoken_from_a_hidden_prompt(isolated: Path) -> None:
    """`nbboard tunnel --authtoken` alone asks for the token in a real terminal (getpass: not echoed)."""
    import sys

    import pexpect

    child = pexpect.spawn(sys.executable, ["-m", "nbboard", "tunnel", "--authtoken"], env=dict(os.environ), timeout=60)
    child.expect("ngrok auth token")
    child.sendline(TOKEN)
    rest = child.read().decode()
    child.wait()
    assert child.exitstatus == 0 and TOKEN not in rest and "saved the ngrok auth token" in rest
    assert _saved_token() == TOKEN


def test_authtoken_on_argv_warns_and_says_where_to_put_it(isolated: Path) -> None:
    result = nbboard_cli("tunnel", "--authtoken", TOKEN)
    assert result.returncode == 0 and _saved_token() == TOKEN
    assert "visible to every user of this machine" in result.stderr
    for better in ("NGROK_AUTHTOKEN", "--authtoken-file", "--authtoken -"):
        assert better in result.stderr
    assert TOKEN not in result.stdout + result.stderr


# ---------------------------------------------------------------------------
# Issue 13 item 4: no internet (Kaggle with Internet off, firewalls, no DNS)


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
    assert _helpers() == []
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
    assert _helpers() == []


def test_ngrok_without_internet_names_the_cause_within_the_timeout(
    isolated: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in agent (ngrok cannot run here) logs what the real one does with no route to ngrok's
    servers; the tunnel fails within --timeout with the cause and the Kaggle fix, and no agent is left."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBBOARD_NGROK_PATH", str(FAKE_NGROK))
    monkeypatch.setenv("FAKE_NGROK_OFFLINE", "1")
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2fakeTokenForTheStandInAgent_abcdefghijklmnop")
    monkeypatch.setenv("KAGGLE_URL_BASE", "https://www.kaggle.com")
    nbboard.start(str(demo_logs))
    t0 = time.monotonic()
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--provider", "ngrok", "--timeout", "6")
    took = time.monotonic() - t0
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach ngrok's servers" in result.stderr and "no such host" in result.stderr
    assert "turn Internet on in the notebook's settings" in result.stderr
    assert took < 6 + 5, f"took {took:.1f} s with --timeout 6"
    assert not [p for p in psutil.process_iter(["cmdline"]) if "fake_ngrok" in " ".join(p.info["cmdline"] or [])]


def test_without_pyngrok_ngrok_says_how_to_get_it_and_auto_falls_back(
    isolated: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyngrok is a dependency, but an environment can lack it (`pip install --no-deps`). Its absence is simulated by blocking its import in the child
    (sys.modules["pyngrok"] = None: the import fails exactly as when it is not installed); the rest is real."""
    import subprocess
    import sys

    board = nbboard.start(str(demo_logs))
    blocked = "import sys; sys.modules['pyngrok'] = None; from nbboard.cli import main; sys.exit(main(sys.argv[1:]))"
    explicit = subprocess.run(
        [sys.executable, "-c", blocked, "tunnel", "--port", str(board.port), "--provider", "ngrok"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NGROK_AUTHTOKEN": "x" * 30},
    )  # fmt: skip
    assert explicit.returncode == 1
    assert "--provider ngrok needs pyngrok" in explicit.stderr and "pip install pyngrok" in explicit.stderr
    from nbboard.tunnels import manager

    monkeypatch.setitem(sys.modules, "pyngrok", None)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "x" * 30)
    chosen, why = manager.choose_provider("auto")
    # Auto falls back to the next provider (issue 19: cloudflared, else localtunnel; see tests/test_cloudflared.py).
    assert chosen != "ngrok" and "pyngrok is not installed" in why
