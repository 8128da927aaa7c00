"""A stand-in for Colab's front end, for browser tests: Colab's own cannot run here.

Real: the Jupyter kernel (jupyter_client), nbboard and the outputs it sends, TensorBoard, Chromium.
Faked, and how:
  - Colab's runtime: the kernel imports a stand-in ``google.colab`` (tests/stubs, on this kernel's PYTHONPATH
    only, imported at start-up as Colab's kernel does) whose ``output.register_callback`` keeps callbacks;
  - Colab's notebook page: ``http://colab.test:P/`` polls this server for the cells' outputs and renders
    them as Colab does: text outputs as text in the cell, each HTML output in its own sandboxed iframe on
    another site (``http://outputframe.test:P/frame/…``), re-rendered in place when an update_display_data
    for its display id arrives. There is no widget manager and no comm: only text/html and text/plain;
  - ``google.colab.kernel`` in the output frame: ``proxyPort(port)`` answers with the URL of a forwarding
    proxy to that port on loopback under yet another site (``http://kernelport.test:Q/``), as Colab's
    answers with its port proxy's; ``invokeFunction(name, args, kwargs)`` posts to the page, which asks this
    server, which runs the registered callback in the kernel through jupyter_client and hands back the
    result's display data (``{data, metadata}``), as Colab's front end does. ``accessAllowed`` is true for
    outputs made while the page is open and false for those it found when it loaded, as for outputs saved
    in a notebook (Colab lets those reach neither the kernel nor its ports).
Chromium reaches the three sites through ``--host-resolver-rules`` (:meth:`ColabFrontEnd.chromium_args`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from tests.browser import ForwardingProxy, _LoopbackServer
from tests.kernel import Kernel

STUBS = Path(__file__).resolve().parent / "stubs"
PAGE_HOST, FRAME_HOST, PORTS_HOST = "colab.test", "outputframe.test", "kernelport.test"
# What Colab's output frames may do (scripts, their own origin, popups such as "Open in tab", forms).
SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-forms allow-modals"


def colab_kernel(cwd: Path, env: dict[str, str] | None = None) -> Kernel:
    """A real kernel with the stand-in ``google.colab`` importable and imported, for this kernel only."""
    path = os.pathsep.join(p for p in (str(STUBS), os.environ.get("PYTHONPATH", "")) if p)
    return Kernel(cwd, env={"PYTHONPATH": path, "PYTHONSTARTUP": str(STUBS / "colab_startup.py"), **(env or {})})


PAGE = """<!doctype html><html><head><title>Colab stand-in</title><style>
.cell { border-left: 3px solid #ccc; margin: 8px 0; padding: 4px 8px; }
.cell pre { margin: 2px 0; white-space: pre-wrap; }
.cell iframe { display: block; width: 100%%; height: 1000px; border: 0; }
</style></head><body><div id="cells"></div><script>
const FRAME_ORIGIN = "http://%(frame_host)s:%(port)s";
const SANDBOX = "%(sandbox)s";
const saved = new Set();  // outputs already there when the page loaded: saved in the notebook
let loaded = false;
async function poll() {
  try {
    const state = await (await fetch("/state")).json();
    if (!loaded) state.cells.forEach((outputs, c) => outputs.forEach((_o, i) => saved.add(`${c}/${i}`)));
    loaded = window.loaded = true;
    state.cells.forEach((outputs, c) => {
      let cell = document.getElementById(`cell-${c}`);
      if (!cell) {
        cell = Object.assign(document.createElement("div"), { id: `cell-${c}`, className: "cell" });
        document.getElementById("cells").append(cell);
      }
      outputs.forEach((out, i) => {
        let node = cell.children[i];
        if (out.kind === "html") {
          if (!node || node.dataset.version !== String(out.version)) {  // new, or update_display_data: render in place
            const frame = document.createElement("iframe");
            frame.className = "output-frame";
            frame.setAttribute("sandbox", SANDBOX);
            frame.dataset.version = String(out.version);
            frame.src = `${FRAME_ORIGIN}/frame/${c}/${i}?v=${out.version}&saved=${saved.has(`${c}/${i}`) ? 1 : 0}`;
            if (node) node.replaceWith(frame);
            else cell.append(frame);
          }
        } else {
          if (!node) {
            node = Object.assign(document.createElement("pre"), { className: `output-${out.kind}` });
            cell.append(node);
          }
          node.textContent = out.text;
        }
      });
    });
  } finally {
    setTimeout(poll, 150);
  }
}
// google.colab.kernel in the output frames: their calls come here and go to the kernel through this server.
window.addEventListener("message", async (event) => {
  if (event.origin !== FRAME_ORIGIN || !event.data || !event.data.call) return;
  const { id, call, args } = event.data;
  let reply;
  try {
    const r = await fetch(`/${call}`, { method: "POST", body: JSON.stringify(args) });
    const body = await r.json();
    reply = r.ok ? { id, result: body } : { id, error: body.error };
  } catch (e) {
    reply = { id, error: String(e) };
  }
  event.source.postMessage(reply, FRAME_ORIGIN);
});
poll();
</script></body></html>"""

FRAME = """<!doctype html><html><head><meta charset="utf-8"><script>
(() => {
  const PAGE_ORIGIN = "http://%(page_host)s:%(port)s";
  const pending = new Map();
  let next = 0;
  function call(kind, args) {
    return new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      window.parent.postMessage({ id, call: kind, args }, PAGE_ORIGIN);
    });
  }
  window.addEventListener("message", (event) => {
    if (event.origin !== PAGE_ORIGIN || !pending.has(event.data.id)) return;
    const { resolve, reject } = pending.get(event.data.id);
    pending.delete(event.data.id);
    if (event.data.error !== undefined) reject(new Error(event.data.error));
    else resolve(event.data.result);
  });
  window.google = { colab: { kernel: {
    accessAllowed: %(access)s,
    proxyPort: (port, options) => call("proxyport", { port, options }).then((r) => r.url),
    invokeFunction: (name, args, kwargs) => call("invoke", { name, args, kwargs }),
  } } };
})();
</script></head><body>%(output)s</body></html>"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ColabFrontEnd(_LoopbackServer):
    """The notebook page, its output frames and the front end's side of proxyPort and invokeFunction."""

    def __init__(self, kernel: Kernel) -> None:
        from http.server import BaseHTTPRequestHandler

        self.kernel = kernel
        self.cells: list[list[dict[str, Any]]] = []  # what each executed cell shows, in order
        self.messages: list[list[dict[str, Any]]] = []  # the kernel's outputs for each cell, as sent
        self.invocations: list[dict[str, Any]] = []  # invokeFunction calls, as the kernel got them
        self.proxy_calls: list[int] = []  # proxyPort calls, by port
        self.proxies: dict[int, ForwardingProxy] = {}
        self._kernel_lock = threading.Lock()  # one request at a time, as Colab queues them
        self._lock = threading.Lock()
        self._version = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: str, kind: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(200, front.page(), "text/html")
                elif path == "/state":
                    self._send(200, json.dumps(front.state()))
                elif m := re.fullmatch(r"/frame/(\d+)/(\d+)", path):
                    saved = "saved=1" in self.path.partition("?")[2].split("&")
                    self._send(200, front.frame(int(m[1]), int(m[2]), saved), "text/html")
                else:
                    self._send(404, "{}")

            def do_POST(self) -> None:  # noqa: N802
                args = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                try:
                    if self.path == "/invoke":
                        result = front.invoke(args["name"], args.get("args", []), args.get("kwargs", {}))
                    elif self.path == "/proxyport":
                        result = {"url": front.proxy_port(int(args["port"]))}
                    else:
                        return self._send(404, "{}")
                except Exception as e:  # noqa: BLE001 - the output frame gets the error, as from Colab
                    return self._send(500, json.dumps({"error": f"{type(e).__name__}: {e}"}))
                self._send(200, json.dumps(result))

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"http://{PAGE_HOST}:{self.port}/"

    def chromium_args(self, *more_rules: str) -> tuple[str, ...]:
        """Chromium's flag that maps the stand-in's sites (and ``more_rules``) to loopback."""
        rules = [f"MAP {host} 127.0.0.1" for host in (PAGE_HOST, FRAME_HOST, PORTS_HOST)]
        return (f"--host-resolver-rules={', '.join([*rules, *more_rules])}",)

    def open(self, page: Any) -> None:
        """Open the notebook in ``page``; returns once it has shown what was there (outputs made later are new)."""
        page.goto(self.url)
        page.wait_for_function("window.loaded === true", timeout=30_000)

    # -- the kernel side

    def run_cell(self, code: str, timeout: float = 180) -> list[dict[str, Any]]:
        """Execute a cell; the page shows its outputs as they arrive. Returns the kernel's outputs."""
        with self._lock:
            self.cells.append([])
            self.messages.append([])
            cell = len(self.cells) - 1
        with self._kernel_lock:
            return self.kernel.run(code, timeout=timeout, on_output=lambda out: self._record(cell, out))

    def start_cell(self, code: str) -> threading.Thread:
        """Run a cell in the background, as a user's click does, while the test watches the page."""
        thread = threading.Thread(target=self.run_cell, args=(code,), daemon=True)
        thread.start()
        return thread

    def invoke(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``google.colab.kernel.invokeFunction``: run the registered callback in the kernel."""
        code = (
            "__import__('google.colab.output._js', fromlist=['_js']).invoke_function("
            f"{name!r}, {json.dumps(args)!r}, {json.dumps(kwargs)!r})"
        )
        self.invocations.append({"name": name, "args": args, "kwargs": kwargs})
        with self._kernel_lock:
            outputs = self.kernel.run(code, on_output=lambda out: self._record(None, out))
        for out in outputs:
            if out["type"] == "error":
                raise RuntimeError(f"{out['ename']}: {out['evalue']}")
            if out["type"] == "execute_result":
                return {"data": out["data"], "metadata": out.get("metadata", {})}
        return {"data": {}, "metadata": {}}

    def proxy_port(self, port: int) -> str:
        """``google.colab.kernel.proxyPort``: a URL on another site that reaches ``port`` on the kernel's machine."""
        with self._lock:
            self.proxy_calls.append(port)
            if port not in self.proxies:
                self.proxies[port] = ForwardingProxy(port)
            return f"http://{PORTS_HOST}:{self.proxies[port].port}/"

    def _record(self, cell: int | None, out: dict[str, Any]) -> None:
        with self._lock:
            self._version += 1
            if cell is not None:
                self.messages[cell].append(out)
            kind = out["type"]
            display_id = (out.get("transient") or {}).get("display_id")
            if kind == "update_display_data":  # every output with this display id, in any cell
                for shown in (o for outs in self.cells for o in outs if o.get("display_id") == display_id):
                    shown.update(_rendered(out), version=self._version)
                return
            if cell is None or kind not in ("display_data", "execute_result", "stream", "error"):
                return
            outputs = self.cells[cell]
            if kind == "stream" and outputs and outputs[-1]["kind"] == f"stream-{out['name']}":
                outputs[-1]["text"] += out["text"]
                return
            outputs.append({**_rendered(out), "display_id": display_id, "version": self._version})

    # -- the page

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"cells": [[{k: v for k, v in o.items() if k != "html"} for o in outs] for outs in self.cells]}

    def page(self) -> str:
        return PAGE % {"frame_host": FRAME_HOST, "port": self.port, "sandbox": SANDBOX}

    def frame(self, cell: int, index: int, saved: bool) -> str:
        with self._lock:
            output = self.cells[cell][index]["html"]
        access = "false" if saved else "true"
        return FRAME % {"page_host": PAGE_HOST, "port": self.port, "output": output, "access": access}

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        super().close()


def _rendered(out: dict[str, Any]) -> dict[str, Any]:
    """How the page shows one output: HTML in a frame, anything else as text."""
    if out["type"] == "stream":
        return {"kind": f"stream-{out['name']}", "text": out["text"]}
    if out["type"] == "error":
        return {"kind": "error", "text": _ANSI.sub("", "\n".join(out["traceback"]))}
    data = out.get("data", {})
    if "text/html" in data:
        return {"kind": "html", "html": data["text/html"], "text": data.get("text/plain", "")}
    return {"kind": "text", "text": data.get("text/plain", "")}
