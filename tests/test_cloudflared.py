"""Cloudflare quick tunnels (issue 19), and providers as plug-ins.

Cloudflare's edge and the real agent cannot be reached from here: tests/stubs/fake_cloudflared.py stands in
for both (its docstring says what is faked: the version output, the log lines and quick-tunnel box on
stderr, the metrics endpoints, an "edge" on 127.0.0.1 that relays to the given URL, SIGTERM). What is real:
nbboard's CLI, API and magic, the tunnel helper and its gate, the registry, TensorBoard, the processes and
their command lines, and, for the download path, an HTTP server on 127.0.0.1 serving the "release".
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import requests

import nbboard
from nbboard import cli, registry
from nbboard.errors import TunnelError
from nbboard.tunnels import cloudflared_agent, manager, providers
from tests.helpers import ROOT, nbboard_cli

FAKE = ROOT / "tests" / "stubs" / "fake_cloudflared.py"


@pytest.fixture
def agent(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stand-in agent named by NBBOARD_CLOUDFLARED_PATH; yields the file it records its runs in."""
    record = tmp_path / "agent.jsonl"
    monkeypatch.setenv("NBBOARD_CLOUDFLARED_PATH", str(FAKE))
    monkeypatch.setenv("FAKE_CLOUDFLARED_RECORD", str(record))
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    monkeypatch.delenv("NBBOARD_CLOUDFLARED_PROTOCOL", raising=False)
    yield record
    nbboard.kill()
    gone, alive = psutil.wait_procs(_agents(), timeout=10)
    assert alive == [], "a stand-in agent outlived the test"


def _runs(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def _edge(record: Path) -> tuple[int, str]:
    """(port, hostname) of the newest registered stand-in edge."""
    (*_, last) = [r for r in _runs(record) if "edge_port" in r]
    return last["edge_port"], last["hostname"]


def _via_edge(record: Path, path: str, **kwargs: object) -> requests.Response:
    """A visitor's request to https://<hostname>/path, as the stand-in edge receives it."""
    port, hostname = _edge(record)
    headers = {"Host": hostname, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, allow_redirects=False, timeout=20, **kwargs)  # type: ignore[arg-type]


def _agents() -> list[psutil.Process]:
    """Stand-in agents of this test's registry (they run with its NBBOARD_HOME)."""
    home = os.environ.get("NBBOARD_HOME", "")
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if "fake_cloudflared" in " ".join(p.info["cmdline"] or []):
            try:
                if p.environ().get("NBBOARD_HOME") == home:
                    found.append(p)
            except psutil.Error:
                continue
    return found


def _open(logdir: Path, *extra: str) -> dict:
    result = nbboard_cli("tunnel", "--logdir", str(logdir), "--provider", "cloudflared", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _secret(url: str) -> str:
    return parse_qs(urlsplit(url).query)["nbboard_token"][0]


def test_a_quick_tunnel_opens_only_with_the_secret(
    agent: Path, demo_logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opened = _open(demo_logs)
    url, secret = opened["url"], _secret(opened["url"])
    assert opened["provider"] == "cloudflared"
    assert urlsplit(url).scheme == "https" and urlsplit(url).hostname.endswith(".trycloudflare.com")
    assert urlsplit(url).hostname == _edge(agent)[1]  # the hostname the agent announced
    (inst,) = nbboard.list()

    # The agent points at the gate, never at TensorBoard, and runs as Cloudflare's docs and the issue say.
    (run,) = [r for r in _runs(agent) if "tunnel" in r.get("argv", [])]
    argv = run["argv"]
    assert argv[argv.index("--url") + 1] == f"http://127.0.0.1:{inst.tunnel.gate_port}"
    assert inst.tunnel.gate_port != inst.port and "--no-autoupdate" in argv
    assert argv[argv.index("--metrics") + 1] == "127.0.0.1:0"
    assert not any(k.startswith("NGROK") for k in run["env"])

    # No secret: 401, and no TensorBoard data; a wrong one: 403. The link's secret opens the data.
    assert _via_edge(agent, "/data/runs").status_code == 401
    assert _via_edge(agent, "/?nbboard_token=" + "x" * 43).status_code == 403
    login = _via_edge(agent, "/?nbboard_token=" + secret)
    assert login.status_code == 302 and login.headers["Location"] == "/"
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie  # the public URL is https
    name, _, rest = cookie.partition("=")
    runs = _via_edge(agent, "/data/runs", cookies={name: rest.split(";", 1)[0]})
    assert runs.status_code == 200 and sorted(runs.json()) == ["eval", "train"]

    # The secret is on no command line (the agent's included), in no log, and masked in the listing.
    agents = _agents()
    assert agents and all(a.ppid() == inst.tunnel.helper_pid for a in agents)
    for proc in psutil.process_iter(["cmdline"]):
        assert secret not in " ".join(proc.info["cmdline"] or []), f"secret in argv of pid {proc.pid}"
    tunnel_log = Path(inst.tunnel.log_path).read_text()
    assert "Registered tunnel connection" in tunnel_log and secret not in tunnel_log
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "(cloudflared)" in listed and "nbboard_token=********" in listed and secret not in listed

    # kill closes the board, its helper and the agent.
    helper = psutil.Process(inst.tunnel.helper_pid)
    report = nbboard.kill()
    assert [i.pid for i in report.stopped] == [inst.pid]
    gone, alive = psutil.wait_procs([helper, *agents], timeout=10)
    assert alive == []
    assert list(registry.ensure_home().joinpath("tunnels").glob("pid-*.json")) == []


def test_ready_only_once_the_agent_has_registered_a_connection(
    agent: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in prints its box at once but registers (and lets visitors in) only 3 s later: the tunnel
    is reported open only then, so the link works the moment it is printed."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_REGISTER_DELAY", "3")
    _open(demo_logs)
    assert _via_edge(agent, "/data/runs").status_code == 401  # the edge is there, and it is the gate answering


def test_without_the_metrics_line_the_log_alone_gives_the_hostname(
    agent: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent whose metrics address nbboard cannot learn: the box's URL and the registration line suffice."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_QUIET_METRICS", "1")
    url = _open(demo_logs)["url"]
    assert urlsplit(url).hostname == _edge(agent)[1]
    assert _via_edge(agent, "/?nbboard_token=" + _secret(url)).status_code == 302


def test_a_hostname_that_is_no_hostname_is_refused(
    agent: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the agent announces is shown to the user and stored as the public URL: it must be a plain
    hostname (no escape sequences, paths or other schemes), or the tunnel fails and nothing is left."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_HOSTNAME", "evil.example/\x1b[2J@x")
    for quiet in ("", "1"):  # the name from /quicktunnel, then from the log's box alone
        monkeypatch.setenv("FAKE_CLOUDFLARED_QUIET_METRICS", quiet)
        result = nbboard_cli("tunnel", "--logdir", str(demo_logs), "--provider", "cloudflared", "--timeout", "15")
        assert result.returncode == 1 and "never said its public hostname" in result.stderr
        assert "\x1b" not in result.stderr  # the agent's lines are quoted with their escapes spelled out
    assert "https://evil.example/\\x1b[2J@x" in result.stderr
    assert _agents() == [] and nbboard.list()[0].tunnel is None


def test_ttl_closes_the_agent_and_keeps_the_board(agent: Path, demo_logs: Path) -> None:
    _open(demo_logs, "--ttl", "2s")
    (inst,) = nbboard.list()
    helper = psutil.Process(inst.tunnel.helper_pid)
    agents = _agents()
    assert agents
    gone, alive = psutil.wait_procs([helper, *agents], timeout=20)  # TTL 2 s + one liveness period
    assert alive == []
    (after,) = nbboard.list()
    assert after.status == "running" and after.tunnel is None


def test_offline_names_the_cause_and_the_fix_within_the_timeout(
    agent: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no network the real agent logs a failed quick-tunnel request and exits 1; the stand-in does the same.
    Issue 21 §4: the board the command started is still running, and the message says so and how to stop it."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "offline")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    logdir = tmp_path / "offline-logs"
    logdir.mkdir()
    result = nbboard_cli("tunnel", "--logdir", str(logdir), "--provider", "cloudflared", "--timeout", "10")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    err = result.stderr
    assert "cannot reach Cloudflare's quick-tunnel service" in err and "does not resolve" in err
    assert "turn Internet on in the notebook's settings" in err
    assert "cloudflared's last lines" in err and "failed to request quick Tunnel" in err  # the agent's own words
    (board,) = nbboard.list()
    assert board.status == "running" and board.tunnel is None
    assert f"TensorBoard on port {board.port}, which this command started" in err
    assert f"still running: a retry reuses it; stop it with: nbboard kill --port {board.port}" in err
    assert _agents() == []
    assert list(registry.ensure_home().joinpath("tunnels").glob("*")) == []

    # A board that was already running is not this command's to mention.
    again = nbboard_cli("tunnel", "--port", str(board.port), "--provider", "cloudflared", "--timeout", "10")
    assert again.returncode == 1 and "cannot reach Cloudflare" in again.stderr
    assert "which this command started" not in again.stderr
    stopped = nbboard_cli("kill", "--port", str(board.port))
    assert stopped.returncode == 0 and nbboard.list() == []


def test_blocked_udp_suggests_http2_within_the_timeout_and_http2_works(
    agent: Path, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where QUIC (UDP 7844) is blocked the agent gets its hostname but never a connection to the edge."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "noudp")
    board = nbboard.start(str(demo_logs))
    t0 = time.monotonic()
    result = nbboard_cli("tunnel", "--port", str(board.port), "--provider", "cloudflared", "--timeout", "5")
    took = time.monotonic() - t0
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no connection to Cloudflare's edge" in result.stderr and "try --protocol http2" in result.stderr
    assert "Failed to dial a quic connection" in result.stderr
    assert took < 5 + 15, f"took {took:.1f} s with --timeout 5"  # bounded by --timeout, not a hang
    assert _agents() == []

    opened = nbboard_cli("tunnel", "--port", str(board.port), "--provider", "cloudflared", "--protocol", "http2")
    assert opened.returncode == 0, opened.stderr
    (run,) = [r for r in _runs(agent) if "--protocol" in r.get("argv", [])]
    assert run["argv"][run["argv"].index("--protocol") + 1] == "http2"
    assert _via_edge(agent, "/data/runs").status_code == 401


def test_auto_choice_ngrok_with_a_token_else_cloudflared_else_localtunnel(
    agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen, why = manager.choose_provider(None)
    assert chosen == "cloudflared"
    assert "using cloudflared" in why and "no account needed" in why and "no ngrok token found" in why

    monkeypatch.setenv("NGROK_AUTHTOKEN", "2fakeTokenForTheAutoChoice_abcdefghijklmnop")
    assert manager.choose_provider("auto") == ("ngrok", "using ngrok (auth token from NGROK_AUTHTOKEN)")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyngrok", None)  # as if pyngrok were not installed
        chosen, why = manager.choose_provider("auto")
    assert chosen == "cloudflared" and "pyngrok is not installed" in why

    # No agent anywhere and no download for this platform: localtunnel, and why.
    monkeypatch.delenv("NGROK_AUTHTOKEN")
    monkeypatch.delenv("NBBOARD_CLOUDFLARED_PATH")
    monkeypatch.setenv("PATH", _path_without_cloudflared())
    monkeypatch.setattr(cloudflared_agent, "RELEASE", cloudflared_agent.Release("0", "http://127.0.0.1:9", {}))
    chosen, why = manager.choose_provider(None)
    assert chosen == "localtunnel" and "cloudflared is not installed" in why
    with pytest.raises(TunnelError, match="no cloudflared is installed"):
        manager.choose_provider("cloudflared")


def test_an_agent_on_path_is_used_and_said(
    agent: Path, demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cloudflared").symlink_to(FAKE)
    monkeypatch.delenv("NBBOARD_CLOUDFLARED_PATH")
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + _path_without_cloudflared())
    result = nbboard_cli("tunnel", "--logdir", str(demo_logs))  # auto, no ngrok token
    assert result.returncode == 0, result.stderr
    assert "using cloudflared (a Cloudflare quick tunnel: no account needed; the agent from PATH)" in result.stderr
    assert "opened a cloudflared tunnel" in result.stderr
    assert any(r.get("argv", [""])[0] == str(bin_dir / "cloudflared") for r in _runs(agent))


def test_help_texts_and_the_magic_read_the_provider_registry(agent: Path) -> None:
    from nbboard.magic_args import USAGE, parse

    assert "--tunnel [ngrok|cloudflared|localtunnel]" in USAGE
    assert parse("--logdir logs --tunnel cloudflared").tunnel == "cloudflared"
    shown = nbboard_cli("tunnel", "--help").stdout
    assert "{auto,ngrok,cloudflared,localtunnel}" in shown
    assert "ngrok with a token, else cloudflared, else localtunnel" in " ".join(shown.split())


def test_no_module_but_the_providers_names_a_provider() -> None:
    """Adding a provider is one module (with its own helpers, named after it: ``cloudflared_agent.py``): nothing
    else in nbboard spells a provider's name as a string."""
    names = set(providers.NAMES)
    tunnels = ROOT / "nbboard" / "tunnels"
    own = {p for n in names for p in (*tunnels.glob(f"{n}.py"), *tunnels.glob(f"{n}_*.py"))} | {
        tunnels / "providers.py"
    }
    offenders = []
    for path in (ROOT / "nbboard").rglob("*.py"):
        if path in own:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_board_tunnel_cloudflared_from_the_magic(agent: Path, demo_logs: Path, tmp_path: Path) -> None:
    from nbboard import api
    from tests.kernel import Kernel

    k = Kernel(tmp_path)
    try:
        k.text("%load_ext nbboard")
        outs = k.run(f"%board --logdir {demo_logs} --tunnel cloudflared")
        ((_inst, url),) = api.tunnel_urls()
        text = "".join(o.get("text", "") for o in outs if o["type"] == "stream")
        assert "opened a cloudflared tunnel" in text and _secret(url) not in text
        assert urlsplit(url).hostname == _edge(agent)[1]
        assert _via_edge(agent, "/data/runs").status_code == 401
        assert _via_edge(agent, "/?nbboard_token=" + _secret(url)).status_code == 302
    finally:
        k.shutdown()


# ---------------------------------------------------------------------------
# The pinned download, against an HTTP server on 127.0.0.1 serving the "release"


def _path_without_cloudflared() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "cloudflared").exists())


class _ReleaseServer:
    """Serves one file (any path) and counts the downloads."""

    def __init__(self, body: bytes) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/download/test"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def release_server() -> Iterator[_ReleaseServer]:
    server = _ReleaseServer(FAKE.read_bytes())
    yield server
    server.stop()


def _release(server: _ReleaseServer, sha256: str) -> cloudflared_agent.Release:
    asset = "cloudflared-test-asset"
    return cloudflared_agent.Release("test-1", server.url, {cloudflared_agent.this_platform(): (asset, sha256)})


@pytest.fixture
def nothing_installed(agent: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NBBOARD_CLOUDFLARED_PATH")
    monkeypatch.setenv("PATH", _path_without_cloudflared())
    return agent


def test_a_good_download_installs_caches_and_runs(
    nothing_installed: Path,
    release_server: _ReleaseServer,
    demo_logs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = hashlib.sha256(FAKE.read_bytes()).hexdigest()
    monkeypatch.setattr(cloudflared_agent, "RELEASE", _release(release_server, good))
    result = nbboard.tunnel(str(demo_logs), provider="cloudflared")
    assert release_server.hits == ["/download/test/cloudflared-test-asset"]
    err = capsys.readouterr().err
    assert "downloading cloudflared: 100% of" in err  # progress, as the bytes arrive
    assert any("downloaded into" in n and "sha256 verified" in n for n in result.notes)
    cached = cloudflared_agent.cache_path(cloudflared_agent.RELEASE)
    assert cached.is_file() and str(cached).startswith(os.environ["NBBOARD_HOME"])
    assert stat.S_IMODE(cached.stat().st_mode) == 0o700 and stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    assert any(r.get("argv", [""])[0] == str(cached) for r in _runs(nothing_installed))  # the cached copy ran
    assert _via_edge(nothing_installed, "/?nbboard_token=" + _secret(result.url)).status_code == 302

    nbboard.kill()
    again = nbboard.tunnel(str(demo_logs), provider="cloudflared")  # a good copy is cached: no second download
    assert len(release_server.hits) == 1 and "downloading cloudflared" not in capsys.readouterr().err
    assert _via_edge(nothing_installed, "/?nbboard_token=" + _secret(again.url)).status_code == 302
    nbboard.kill()

    # A cached copy that changed since it was verified is not run: it is fetched (and checked) again.
    with open(cached, "ab") as f:
        f.write(b"\n# tampered\n")
    assert cloudflared_agent.find_agent() == (None, "")
    assert cloudflared_agent.install(cloudflared_agent.RELEASE) == cached and len(release_server.hits) == 2
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == good


def test_a_bad_download_is_refused_and_nothing_runs(
    nothing_installed: Path, release_server: _ReleaseServer, demo_logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = "0" * 64
    monkeypatch.setattr(cloudflared_agent, "RELEASE", _release(release_server, pinned))
    with pytest.raises(TunnelError) as caught:
        nbboard.tunnel(str(demo_logs), provider="cloudflared")
    message = str(caught.value)
    assert f"not the {pinned} nbboard pins" in message and "nothing was run" in message
    assert "NBBOARD_CLOUDFLARED_PATH" in message  # what to do instead
    assert release_server.hits == ["/download/test/cloudflared-test-asset"]
    assert _runs(nothing_installed) == []  # the stand-in never ran, not even for --version
    cache = cloudflared_agent.cache_path(cloudflared_agent.RELEASE).parent
    assert list(cache.iterdir()) == []  # nothing kept, not even the partial file
    assert _agents() == []
    # Refused again on the next try (nothing bad was cached as good).
    with pytest.raises(TunnelError, match="nbboard pins"):
        cloudflared_agent.install(cloudflared_agent.RELEASE)
    assert len(release_server.hits) == 2


def test_no_download_for_this_platform_or_offline_says_what_to_do(
    nothing_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TunnelError, match="nbboard has no cloudflared download for") as caught:
        cloudflared_agent.install(cloudflared_agent.Release("test-1", "http://127.0.0.1:9", {}))
    assert "NBBOARD_CLOUDFLARED_PATH" in str(caught.value)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    release = cloudflared_agent.Release(
        "test-1", f"http://127.0.0.1:{dead}", {cloudflared_agent.this_platform(): ("a", "0" * 64)}
    )
    with pytest.raises(TunnelError, match="cannot download cloudflared") as caught:
        cloudflared_agent.install(release, timeout=5)
    assert "connection was refused" in str(caught.value) and "offline" in str(caught.value)


def test_the_pinned_release_covers_the_platforms_the_issue_names() -> None:
    """linux amd64/arm64, macOS, Windows; each a sha256 of the version's own asset."""
    release = cloudflared_agent.RELEASE
    assert set(release.assets) == {
        ("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64"),
    }  # fmt: skip
    assert release.base_url.endswith("/releases/download/" + release.version)
    for system, arch in release.assets:
        asset, sha = release.assets[(system, arch)]
        assert asset.startswith(f"cloudflared-{system}-{arch}") and len(sha) == 64 and int(sha, 16) >= 0
    assert len({sha for _, sha in release.assets.values()}) == 5


def test_a_macos_archive_gives_up_its_cloudflared_only(
    nothing_installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS assets are .tgz files holding one ``cloudflared``: after the archive's sha256 matches, that member
    alone is installed; an archive without it (or with only other paths, "../" ones included) installs nothing."""
    import io
    import tarfile

    def tgz(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    good = tgz({"README.md": b"hi", "cloudflared": FAKE.read_bytes()})
    server = _ReleaseServer(good)
    try:
        release = cloudflared_agent.Release(
            "test-tgz",
            server.url,
            {cloudflared_agent.this_platform(): ("cloudflared-test.tgz", hashlib.sha256(good).hexdigest())},
        )
        installed = cloudflared_agent.install(release)
        assert installed.read_bytes() == FAKE.read_bytes() and cloudflared_agent.version(installed) == "2026.9.1"
        assert sorted(p.name for p in installed.parent.iterdir()) == ["cloudflared", "cloudflared.sha256"]
    finally:
        server.stop()
    evil = tgz({"../cloudflared": b"#!/bin/sh\necho pwned\n", "bin/cloudflared": b"x"})
    server = _ReleaseServer(evil)
    try:
        release = cloudflared_agent.Release(
            "test-evil",
            server.url,
            {cloudflared_agent.this_platform(): ("cloudflared-test.tgz", hashlib.sha256(evil).hexdigest())},
        )
        with pytest.raises(TunnelError, match="holds no cloudflared program"):
            cloudflared_agent.install(release)
        assert list(cloudflared_agent.cache_path(release).parent.iterdir()) == []
        assert not (cloudflared_agent.cache_path(release).parent.parent / "cloudflared").exists()
    finally:
        server.stop()


def test_provider_options_that_do_not_apply_or_are_wrong_say_so(agent: Path, demo_logs: Path) -> None:
    board = nbboard.start(str(demo_logs))
    port = str(board.port)
    for args, says in [
        (["--provider", "cloudflared", "--protocol", "udp"], "invalid --protocol 'udp'"),
        (["--provider", "localtunnel", "--protocol", "http2"], "--protocol does not apply to localtunnel"),
        (["--provider", "cloudflared", "--host", "http://127.0.0.1:9"], "--host is for --provider localtunnel"),
    ]:
        result = nbboard_cli("tunnel", "--port", port, *args)
        assert result.returncode == 2 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert _runs(agent) == [] and nbboard.list()[0].tunnel is None  # nothing was started for any of them
