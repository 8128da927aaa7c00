#!/usr/bin/env python3
"""A stand-in for the cloudflared agent and Cloudflare's edge, because neither can be reached from here.

What is faked, and how faithfully (to what nbboard reads from the real agent, per its source and
shared/README.md's "Cloudflare quick tunnels, as the agent shows them"):

- ``cloudflared --version`` / ``cloudflared version``: "cloudflared version 2026.9.1 (built …)".
- ``cloudflared tunnel --url URL [--metrics ADDR] [--protocol P] …``: log lines on stderr in the agent's
  format (``<RFC 3339 time> INF|ERR message key=value``): the account-less disclaimer, "Requesting new quick
  Tunnel on trycloudflare.com...", the ASCII box whose third line holds ``https://<words>.trycloudflare.com``,
  "Starting metrics server on ADDR/metrics" (``--metrics 127.0.0.1:0`` binds a port of its own choosing), then
  "Registered tunnel connection connIndex=0 … protocol=quic".
- The metrics server: ``/quicktunnel`` answers ``{"hostname":"<words>.trycloudflare.com"}``, ``/ready``
  answers 503 then 200 with ``{"status","readyConnections","connectorId"}``, ``/healthcheck`` "OK".
- The "edge": an HTTP listener on 127.0.0.1 (standing in for https://<words>.trycloudflare.com) that only
  starts once the connection is registered, answers 404 for any other Host, and relays each request to URL
  as a new request with the headers Cloudflare adds (X-Forwarded-Proto: https, X-Forwarded-For,
  Cf-Connecting-Ip, Cf-Visitor), relaying the answer back (no redirect is followed).
- SIGTERM/SIGINT: logs the graceful shutdown and exits 0.

Knobs (environment): FAKE_CLOUDFLARED_RECORD=file: append one JSON line per run (argv, environment
names) and, once registered, one with the edge's port and hostname. FAKE_CLOUDFLARED_MODE=offline: the
quick-tunnel request fails as with no network (a DNS error) and it exits 1; =noudp: with the default
protocol (quic) it never reaches the edge and logs the QUIC dial errors again and again (``--protocol
http2`` works). FAKE_CLOUDFLARED_REGISTER_DELAY=seconds between the box and the registration.
FAKE_CLOUDFLARED_QUIET_METRICS=1: the metrics line is not logged (nbboard must fall back on the log alone);
FAKE_CLOUDFLARED_HOSTNAME=name: the hostname it announces, in the box and on /quicktunnel (hostile tests).
Only the Python standard library is used, so a copy of this file runs from anywhere (the download tests
serve it as the "release").
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "2026.9.1"
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host"}


def say(level: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} {level} {message}\n")
    sys.stderr.flush()


def option(args: list[str], name: str, default: str = "") -> str:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def record(data: dict) -> None:
    path = os.environ.get("FAKE_CLOUDFLARED_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(data) + "\n")


def box(lines: list[str]) -> list[str]:
    width = max(len(line) for line in lines)
    border = "+" + "-" * (width + 4) + "+"
    return [border, *[f"|  {line}{' ' * (width - len(line))}  |" for line in lines], border]


class State:
    hostname = ""
    ready = False
    connector = str(uuid.uuid4())


def metrics_handler(state: type[State]) -> type[BaseHTTPRequestHandler]:
    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/quicktunnel":
                self._send(200, ('{"hostname":"' + state.hostname + '"}').encode())  # the agent's exact bytes
            elif self.path == "/ready":
                code = 200 if state.ready else 503
                body = {"status": code, "readyConnections": int(state.ready), "connectorId": state.connector}
                self._send(code, json.dumps(body).encode())
            elif self.path == "/healthcheck":
                self._send(200, b"OK\n", "text/plain")
            elif self.path == "/metrics":
                self._send(200, f"cloudflared_tunnel_ha_connections {int(state.ready)}\n".encode(), "text/plain")
            else:
                self._send(404, b"404 page not found\n", "text/plain")

    return Metrics


def edge_handler(origin: str, hostname: str) -> type[BaseHTTPRequestHandler]:
    target = urllib.parse.urlsplit(origin)

    class Edge(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _relay(self) -> None:
            if (self.headers.get("Host") or "").split(":")[0].lower() != hostname:
                body = b"error code: 1033"  # Cloudflare's answer for a hostname with no tunnel behind it
                self.send_response(530)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            headers.update({
                "Host": hostname,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": self.client_address[0],
                "Cf-Connecting-Ip": self.client_address[0],
                "Cf-Visitor": '{"scheme":"https"}',
                "Cf-Ray": secrets.token_hex(8) + "-LHR",
            })  # fmt: skip
            upstream = HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                resp = upstream.getresponse()
                data = resp.read()
            except OSError:
                data = b"error code: 502"
                self.send_response(502)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            finally:
                upstream.close()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _relay

    return Edge


def serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def tunnel(args: list[str]) -> int:
    origin = option(args, "--url")
    protocol = option(args, "--protocol", "quic")
    mode = os.environ.get("FAKE_CLOUDFLARED_MODE", "")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    say("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
        "experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee.")  # fmt: skip
    say("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if mode == "offline":
        time.sleep(0.3)
        say("ERR", 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup '
            "api.trycloudflare.com on 127.0.0.53:53: no such host")  # fmt: skip
        return 1
    words = "-".join(secrets.choice(["alpha", "bravo", "delta", "gamma", "kilo", "lima", "oscar"]) for _ in range(3))
    State.hostname = os.environ.get("FAKE_CLOUDFLARED_HOSTNAME") or f"{words}-{secrets.token_hex(2)}.trycloudflare.com"
    for line in box(
        ["Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):",
         f"https://{State.hostname}"]
    ):  # fmt: skip
        say("INF", line)
    say("INF", "Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared]")
    say("INF", f"Version {VERSION} (Checksum 0000)")
    say("INF", "Generated Connector ID: " + State.connector)
    metrics_addr = option(args, "--metrics", "127.0.0.1:0")
    host, _, port = metrics_addr.rpartition(":")
    metrics = ThreadingHTTPServer((host, int(port)), metrics_handler(State))
    serve(metrics)
    if not os.environ.get("FAKE_CLOUDFLARED_QUIET_METRICS"):
        say("INF", f"Starting metrics server on {host}:{metrics.server_address[1]}/metrics")
    edge = None
    if mode == "noudp" and protocol != "http2":
        while not stop.wait(0.5):
            say("ERR", 'Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no '
                'recent network activity" connIndex=0 event=0 ip=198.41.192.7')  # fmt: skip
            say("INF", "Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.7")
    else:
        if stop.wait(float(os.environ.get("FAKE_CLOUDFLARED_REGISTER_DELAY") or 0.2)):
            return 0
        edge = ThreadingHTTPServer(("127.0.0.1", 0), edge_handler(origin, State.hostname))
        serve(edge)
        State.ready = True
        record({"edge_port": edge.server_address[1], "hostname": State.hostname, "metrics": metrics_addr})
        say("INF", f"Registered tunnel connection connIndex=0 connection={uuid.uuid4()} event=0 ip=198.41.192.7 "
            f"location=lhr01 protocol={protocol}")  # fmt: skip
        stop.wait()
    say("INF", "Initiating graceful shutdown due to signal terminated ...")
    if edge is not None:
        edge.shutdown()
    metrics.shutdown()
    return 0


def main() -> int:
    args = sys.argv[1:]
    record({"argv": sys.argv, "env": sorted(os.environ)})
    if args[:1] in (["version"], ["--version"], ["-v"]):
        print(f"cloudflared version {VERSION} (built 2026-09-10-1200 UTC)")
        return 0
    if args[:1] == ["tunnel"] and "--url" in " ".join(args):
        return tunnel(args[1:])
    sys.stderr.write("stand-in cloudflared: only --version and tunnel --url are faked\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
