"""ngrok: its auth token (where it comes from, where it is kept, never printed nor handed to other children) and
the tunnel through a stand-in agent (ngrok's cloud cannot run here: tests/stubs/fake_ngrok.py stands in for it)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import psutil
import pytest

import nbboard
from tests.helpers import nbboard_cli
from tests.localtunnel_server import LocaltunnelServer
from tests.tunnel_helpers import helper_processes, open_tunnel, secret_in


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
    assert helper_processes() == []


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
        requests.get(base + "/data/runs", headers={"Authorization": "Bearer " + secret_in(url)}, timeout=10).json()
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


def test_children_never_get_the_ngrok_token(
    lt: LocaltunnelServer, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorBoard, its data server and the tunnel helper start without NGROK_AUTHTOKEN / NGROK_API_KEY (read
    from the real processes' environ), and with everything else (TensorBoard may need cloud credentials)."""
    token = "2canaryTokenThatMustNotTravel_abcdefghijklmnop"
    monkeypatch.setenv("NGROK_AUTHTOKEN", token)
    monkeypatch.setenv("NGROK_API_KEY", "canary-api-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kept-for-s3-logdirs")
    open_tunnel(demo_logs)  # --provider localtunnel: the token is set but not needed
    (inst,) = nbboard.list()
    board = psutil.Process(inst.pid)
    children = board.children(recursive=True)
    assert children, "TensorBoard's data server should run as its child"
    for proc in [board, *children, psutil.Process(inst.tunnel.helper_pid)]:
        env = proc.environ()
        assert "NGROK_AUTHTOKEN" not in env and "NGROK_API_KEY" not in env, proc.cmdline()
        assert token not in " ".join(env.values())
        assert env.get("AWS_SECRET_ACCESS_KEY") == "kept-for-s3-logdirs"


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
