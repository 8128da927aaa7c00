#!/usr/bin/env python3
"""A stand-in for the ngrok agent and its cloud, because neither can be reached from here.

It speaks just enough of the agent's contract for pyngrok: ``version``, and
``start --none --log stdout`` printing the logfmt lines pyngrok waits for,
then a local API where ``POST /api/endpoints`` opens an "endpoint": a
forwarding listener on 127.0.0.1 standing in for the public URL. It writes
its argv and whether it got NGROK_AUTHTOKEN from its environment to
$FAKE_NGROK_RECORD, so tests can check how nbboard handed it the token.

Like the real agent it would expose captured requests (the secret link and
cookies) on its unauthenticated local API, so it refuses to run unless
nbboard turned inspection off: the config file given with ``--config`` must
set ``agent.inspect_db_size: -1`` (no capture at all), and every endpoint
must be created with ``inspect: false``. With $FAKE_NGROK_OFFLINE set it
behaves as the agent does without internet: it logs the failed lookup of
ngrok's servers again and again and never connects.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.browser import ForwardingProxy  # noqa: E402


def forwarder(upstream: str) -> ForwardingProxy:
    """The stand-in public endpoint: forwards to the upstream, as ngrok's edge does after TLS."""
    return ForwardingProxy(int(upstream.rpartition(":")[2]), extra_headers={"X-Forwarded-Proto": "https"})


def main() -> int:
    args = sys.argv[1:]
    record = os.environ.get("FAKE_NGROK_RECORD")
    if record:
        with open(record, "a") as f:
            f.write(json.dumps({"argv": sys.argv, "env_token": bool(os.environ.get("NGROK_AUTHTOKEN"))}) + "\n")
    if args[:1] in (["version"], ["--version"]):
        print("ngrok version 3.20.0")
        return 0
    if args[:1] != ["start"]:
        return 0
    config = {}
    if "--config" in args:
        import yaml

        config = yaml.safe_load(Path(args[args.index("--config") + 1]).read_text()) or {}
    if record:
        with open(record, "a") as f:
            f.write(
                json.dumps({"argv": [], "env_token": bool(os.environ.get("NGROK_AUTHTOKEN")), "config": config}) + "\n"
            )
    if (config.get("agent") or {}).get("inspect_db_size") != -1:
        print(
            't=2026-01-01T00:00:00+0000 lvl=eror msg="stand-in agent: inspection is on" err="agent.inspect_db_size must be -1"',
            flush=True,
        )
        return 1
    if not os.environ.get("NGROK_AUTHTOKEN") and "--authtoken" not in args:
        print(
            't=2026-01-01T00:00:00+0000 lvl=eror msg="authentication failed: Usage of ngrok requires a verified account and authtoken." err="ERR_NGROK_4018"',
            flush=True,
        )
        return 1
    if os.environ.get("FAKE_NGROK_OFFLINE"):  # what the real agent logs, again and again, with no internet
        while True:
            print(
                't=2026-01-01T00:00:00+0000 lvl=eror msg="failed to reconnect session" obj=tunnels.session '
                'err="dial tcp: lookup connect.ngrok-agent.com on 127.0.0.53:53: no such host"',
                flush=True,
            )
            time.sleep(0.5)
    endpoints: dict[str, dict] = {}

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, code: int, data: object) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            options = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if record:
                with open(record, "a") as f:
                    f.write(json.dumps({"argv": [], "env_token": True, "options": options}) + "\n")
            if options.get("inspect") is not False:
                self._json(400, {"error_code": 102, "status_code": 400, "msg": "stand-in agent: inspect must be false",
                                 "details": {"err": "inspection would capture the secret link and cookies"}})  # fmt: skip
                return
            upstream = (options.get("upstream") or {}).get("url") or options.get("addr")
            server = forwarder(str(upstream).replace("http://", ""))
            name = options.get("name") or f"ep{len(endpoints)}"
            ep = {"id": name, "name": name, "uri": f"/api/endpoints/{name}", "url": f"http://127.0.0.1:{server.port}",
                  "upstream": {"url": upstream, "protocol": "http1"}, "proto": "https"}  # fmt: skip
            endpoints[name] = ep
            self._json(201, ep)

        def do_GET(self) -> None:
            self._json(200, {"endpoints": list(endpoints.values()), "tunnels": []})

        def do_DELETE(self) -> None:
            endpoints.pop(self.path.rsplit("/", 1)[-1], None)
            self.send_response(204)
            self.end_headers()

    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{api.server_address[1]}"
    print(
        f't=2026-01-01T00:00:00+0000 lvl=info msg="starting web service" obj=web addr={addr} allow_hosts=[]', flush=True
    )
    print('t=2026-01-01T00:00:00+0000 lvl=info msg="client session established" obj=tunnels.session', flush=True)
    print('t=2026-01-01T00:00:00+0000 lvl=info msg="tunnel session started" obj=tunnels.session', flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main())
