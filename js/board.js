// nbboard's board: header (logdir, port, pid, uptime, state), actions, and TensorBoard in an iframe.
//
// The iframe URL is resolved here, in the browser, because only the browser knows where the
// notebook page came from: the kernel cannot tell a local Jupyter from one behind JupyterHub's
// proxy, Colab, Kaggle or VS Code. Order of preference:
//   1. TENSORBOARD_PROXY_URL (a template with %PORT%), when the kernel's environment set it;
//   2. Colab: google.colab.kernel.proxyPort(port);
//   3. the page is on this machine (localhost): http://127.0.0.1:<port>/ directly;
//   4. jupyter-server-proxy: <base_url>proxy/<port>/ (same origin; trailing slash matters);
//   5. the page is elsewhere (VS Code's webview, a remote Jupyter after `ssh -L`): the browser's own
//      loopback, where VS Code and ssh forward the kernel's ports. Skipped when the kernel says it
//      runs on Kaggle or Colab, which forward nothing (a probe would only find the user's own ports);
//      tried first when the kernel says it runs under VS Code. The probe decides, not the hint;
//   6. otherwise: say the board is unreachable from this browser and how to fix it (the kernel's
//      remote_hint: the ssh -L line, the local URL, %board --tunnel).
// Shipped as is (no build step); anywidget loads it as an ES module (nbboard/widget.py inlines the import below).
// A re-run of the cell shows the same live TensorBoard document again: see js/frame_park.js.

import { adopt, dropBoard, forget, keep } from "./frame_park.js";

const PROBE_TIMEOUT_MS = 4000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 24 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function prefixPath(model) {
  const p = (model.get("path_prefix") || "").replace(/^\/+|\/+$/g, "");
  return p ? `${p}/` : "";
}

export function jupyterBaseUrl(doc = document) {
  const config = doc.getElementById("jupyter-config-data");
  if (config) {
    try {
      const base = JSON.parse(config.textContent).baseUrl;
      if (base) return base.endsWith("/") ? base : `${base}/`;
    } catch (_e) {
      /* not JSON: fall through */
    }
  }
  const fromBody = doc.body && doc.body.dataset && doc.body.dataset.baseUrl;
  return fromBody ? (fromBody.endsWith("/") ? fromBody : `${fromBody}/`) : null;
}

async function probe(url, sameOrigin) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  try {
    if (sameOrigin) {
      const r = await fetch(`${url}data/environment`, { credentials: "same-origin", signal: controller.signal });
      if (!r.ok) return false;
      const body = await r.json();
      return typeof body === "object" && body !== null && "data_location" in body;
    }
    // Cross-origin: an opaque response proves something answers; a refused connection rejects.
    await fetch(`${url}data/environment`, { mode: "no-cors", signal: controller.signal });
    return true;
  } catch (_e) {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

// Only http(s) links are followed: the URL comes from a tunnel server, which may be hostile (javascript:…).
export function httpLink(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_e) {
    return null;
  }
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

export async function resolveBoardUrl(model, win = globalThis) {
  const port = model.get("port");
  const suffix = prefixPath(model);
  const tried = [];
  const template = model.get("proxy_template");
  if (template) {
    const url = template.replace("%PORT%", String(port));
    return { url: (url.endsWith("/") ? url : `${url}/`) + suffix, via: "TENSORBOARD_PROXY_URL", tried };
  }
  const colab = win.google && win.google.colab && win.google.colab.kernel;
  if (colab && typeof colab.proxyPort === "function") {
    let url = await colab.proxyPort(port, { cache: false });
    url = String(url);
    return { url: (url.endsWith("/") ? url : `${url}/`) + suffix, via: "Colab", tried };
  }
  const loc = win.location;
  const local = LOCAL_HOSTS.has(loc.hostname);
  const base = jupyterBaseUrl(win.document);
  const hint = model.get("host_app") || "";
  const candidates = [];
  // Keep the page's own loopback name: "localhost" and "127.0.0.1" are different sites, and a
  // cross-site iframe loses localStorage, which TensorBoard needs. Browsers try 127.0.0.1 for
  // "localhost" too; only an IPv6 page ([::1]) is sent to 127.0.0.1, where TensorBoard listens.
  if (local) {
    const host = loc.hostname === "localhost" ? "localhost" : "127.0.0.1";
    candidates.push({ url: `http://${host}:${port}/${suffix}`, via: "direct", sameOrigin: false });
  }
  if (base) candidates.push({ url: `${loc.origin}${base}proxy/${port}/${suffix}`, via: "jupyter-server-proxy", sameOrigin: true });
  if (!local && hint !== "kaggle" && hint !== "colab") {
    const forwarded = { url: `http://127.0.0.1:${port}/${suffix}`, via: "forwarded port", sameOrigin: false };
    if (hint === "vscode") candidates.unshift(forwarded);
    else candidates.push(forwarded);
  }
  for (const c of candidates) {
    tried.push(c.url);
    if (await probe(c.url, c.sameOrigin)) return { url: c.url, via: c.via, tried };
  }
  return { url: null, via: null, tried };
}

function render({ model, el: host }) {
  host.classList.add("nbboard");
  const badge = el("span", { class: "nbboard-state" });
  const title = el("span", { class: "nbboard-title" });
  const details = el("span", { class: "nbboard-details" });
  const openLink = el("a", { class: "nbboard-button nbboard-open", target: "_blank", rel: "noopener" }, "Open ↗");
  const reloadButton = el("button", { class: "nbboard-button nbboard-reload", title: "Reload the board" }, "Reload");
  const stopButton = el("button", { class: "nbboard-button nbboard-stop", title: "Stop this TensorBoard" }, "Stop");
  // The public link carries its secret, so it is never synced state (a saved notebook would keep it): the
  // kernel hands it to this view when the user presses the button, and it lives only in this page.
  const tunnelLink = el(
    "a",
    { class: "nbboard-button nbboard-tunnel", target: "_blank", rel: "noopener", role: "button", tabindex: "0", title: "Open the public link (it carries its secret)" },
    "Public link ↗",
  );
  const closeTunnel = el("button", { class: "nbboard-button nbboard-close-tunnel", title: "Close the public link" }, "Close link");
  const header = el(
    "div",
    { class: "nbboard-header" },
    badge,
    title,
    details,
    el("span", { class: "nbboard-actions" }, openLink, tunnelLink, closeTunnel, reloadButton, stopButton),
  );
  const body = el("div", { class: "nbboard-body" });
  host.replaceChildren(header, body);

  let resolved = null; // { url, via, tried }
  let resolving = null;
  let shownFor = null;

  function elapsedText() {
    const started = model.get("started_at");
    return started ? duration(Date.now() / 1000 - started) : "";
  }

  let adopting = null; // cancels the move of a parked frame into this view

  function stopAdopting() {
    if (adopting) adopting();
    adopting = null;
  }

  function message(kind, text, extra) {
    stopAdopting();
    forget(body.querySelector("iframe"));
    const box = el("div", { class: `nbboard-message nbboard-${kind}` }, el("div", {}, text));
    if (extra) box.append(extra);
    body.replaceChildren(box);
    shownFor = null;
  }

  function showIframe(url) {
    if (shownFor === url && (adopting || body.querySelector("iframe"))) return;
    stopAdopting();
    forget(body.querySelector("iframe"));
    shownFor = url;
    // The same board's frame from this cell's previous output (a re-run, a kernel restart): no reload.
    body.replaceChildren();
    adopting = adopt(model, url, body, (frame) => {
      adopting = null;
      showFrame(url, frame);
      if (frame) model.send({ type: "shown" });
    });
    if (!adopting) showFrame(url, null);
  }

  function showFrame(url, adopted) {
    let frame = adopted;
    if (!frame) {
      frame = el("iframe", { class: "nbboard-frame", src: url, allow: "clipboard-write" });
      // Tell the kernel once the browser has loaded TensorBoard here: it prepares the next standby after that,
      // not while this browser is still busy with TensorBoard's 6 MB of JavaScript.
      frame.addEventListener("load", () => model.send({ type: "shown" }), { once: true });
      body.replaceChildren(frame);
    }
    frame.title = `TensorBoard on port ${model.get("port")}`;
    frame.style.height = `${model.get("height")}px`;
    keep(frame, host, model, url);
  }

  async function ensureUrl() {
    if (resolved && resolved.url) return resolved;
    if (!resolving) {
      resolving = resolveBoardUrl(model).then((r) => {
        resolved = r;
        resolving = null;
        return r;
      });
    }
    return resolving;
  }

  function updateHeader() {
    const status = model.get("status");
    badge.textContent = status;
    badge.dataset.state = status;
    host.dataset.state = status;
    title.textContent = model.get("logdir") ? `TensorBoard · ${model.get("logdir")}` : "TensorBoard";
    const port = model.get("port");
    const parts = [];
    if (port) parts.push(`port ${port}`);
    if (model.get("pid")) parts.push(`pid ${model.get("pid")}`);
    if (status === "running" && model.get("started_at")) parts.push(`up ${elapsedText()}`);
    if (status === "starting") parts.push(`starting… ${elapsedText()}`);
    if (resolved && resolved.via && status === "running") parts.push(`via ${resolved.via}`);
    details.textContent = parts.join(" · ");
    const user = model.get("kernel_user");
    const kernelHost = model.get("kernel_host");
    details.title = kernelHost ? `kernel on ${user ? `${user}@` : ""}${kernelHost}` : "";
    const live = status === "running";
    stopButton.disabled = !(live || status === "starting") || !model.get("pid");
    reloadButton.disabled = !live;
    openLink.style.display = live && resolved && resolved.url ? "" : "none";
    if (resolved && resolved.url) openLink.href = resolved.url;
    const tunnel = model.get("tunnel_open");
    tunnelLink.style.display = tunnel ? "" : "none";
    closeTunnel.style.display = tunnel ? "" : "none";
  }

  async function updateBody() {
    const status = model.get("status");
    if (status === "starting") {
      message("progress", `Starting TensorBoard… ${elapsedText()}`);
      return;
    }
    if (status === "failed") {
      const pre = el("pre", { class: "nbboard-error" }, model.get("error") || "TensorBoard failed to start.");
      message("failed", "TensorBoard could not start:", pre);
      return;
    }
    if (status === "stopped") {
      message("stopped", model.get("note") || `TensorBoard on port ${model.get("port")} was stopped.`);
      return;
    }
    if (status === "choose") {
      // No logdir was given and no board runs: the kernel found these; the user picks one.
      const list = el("div", { class: "nbboard-candidates" });
      for (const c of model.get("candidates") || []) {
        const button = el(
          "button",
          { class: "nbboard-button nbboard-candidate", title: c.path },
          el("code", {}, c.label),
          el("span", { class: "nbboard-candidate-detail" }, c.detail),
        );
        button.addEventListener("click", () => {
          for (const b of list.querySelectorAll("button")) b.disabled = true;
          model.set("chosen", c.path);
          model.save_changes();
        });
        list.append(button);
      }
      const note = model.get("note");
      message("choose", "No logdir given. These directories hold event files; start TensorBoard on:", list);
      if (note) body.firstChild.append(el("div", { class: "nbboard-hint" }, note));
      return;
    }
    if (status !== "running") {
      message("stale", model.get("note") || `TensorBoard is ${status}.`);
      return;
    }
    const r = await ensureUrl();
    if (model.get("status") !== "running") return;
    updateHeader();
    if (r.url) {
      showIframe(r.url);
      return;
    }
    const hint = el(
      "div",
      { class: "nbboard-hint" },
      `This browser cannot reach TensorBoard on port ${model.get("port")} of the kernel's machine`,
      r.tried.length ? ` (tried ${r.tried.join(", ")}).` : ".",
    );
    const steps = model.get("remote_hint");
    if (steps) hint.append(el("div", { class: "nbboard-remote" }, steps));
    else hint.append(el("div", {}, "Run ", el("code", {}, "%board --tunnel"), " for a protected public link."));
    if (model.get("host_app") !== "kaggle") {
      const alt = jupyterBaseUrl(document) ? " (or installing jupyter-server-proxy on the Jupyter server)" : "";
      hint.append(el("div", {}, `After forwarding${alt}, press Reload to show it here.`));
    }
    message("unreachable", "TensorBoard is running, but not reachable from here.", hint);
  }

  function update() {
    updateHeader();
    updateBody();
  }

  reloadButton.addEventListener("click", () => {
    const frame = body.querySelector("iframe");
    if (frame) frame.src = frame.src;
    else updateBody(); // unreachable: probe again (after `ssh -L`, or once jupyter-server-proxy is installed)
  });
  tunnelLink.addEventListener("click", (event) => {
    if (tunnelLink.getAttribute("href")) return; // fetched before: a plain link now
    event.preventDefault();
    model.send({ type: "tunnel_url" });
  });
  const onCustom = (msg) => {
    if (!msg || msg.type !== "tunnel_url") return;
    const url = httpLink(msg.url);
    if (!url) {
      tunnelLink.title = msg.error || "the kernel sent no http(s) link";
      return;
    }
    tunnelLink.href = url; // if the browser blocks the tab below (a slow kernel), the next click opens it
    el("a", { href: url, target: "_blank", rel: "noopener" }).click();
  };
  model.on("msg:custom", onCustom);
  closeTunnel.addEventListener("click", () => {
    closeTunnel.disabled = true;
    model.send({ type: "close_tunnel" });
  });
  stopButton.addEventListener("click", () => {
    stopButton.disabled = true;
    badge.textContent = "stopping";
    model.send({ type: "stop" });
  });

  const onChange = () => {
    if (model.get("status") !== "running") {
      resolved = null;
      dropBoard(model); // a stopped board's frame is never shown again
    }
    update();
  };
  const onPort = () => {
    resolved = null;
    shownFor = null;
    update();
  };
  const onHeight = () => {
    const frame = body.querySelector("iframe");
    if (frame) frame.style.height = `${model.get("height")}px`;
  };
  model.on("change:status", onChange);
  model.on("change:port", onPort);
  model.on("change:height", onHeight);
  const onTunnel = () => {
    closeTunnel.disabled = false;
    tunnelLink.removeAttribute("href"); // a new tunnel has a new secret: ask again
    tunnelLink.title = "Open the public link (it carries its secret)";
    updateHeader();
  };
  model.on("change:tunnel_open", onTunnel);
  model.on("change:note", update);
  model.on("change:error", update);
  model.on("change:remote_hint", update);
  const ticker = setInterval(() => {
    const status = model.get("status");
    if (status === "starting") {
      updateHeader();
      const box = body.querySelector(".nbboard-progress div");
      if (box) box.textContent = `Starting TensorBoard… ${elapsedText()}`;
    } else if (status === "running") {
      updateHeader();
    }
  }, 1000);
  update();

  return () => {
    clearInterval(ticker);
    stopAdopting();
    forget(body.querySelector("iframe")); // the view itself goes (its model closed): no re-run to keep it for
    model.off("change:status", onChange);
    model.off("change:port", onPort);
    model.off("change:height", onHeight);
    model.off("change:tunnel_open", onTunnel);
    model.off("msg:custom", onCustom);
    model.off("change:note", update);
    model.off("change:error", update);
    model.off("change:remote_hint", update);
  };
}

export default { render };
