// nbboard's board widget: header (logdir, port, pid, uptime, state), actions, and TensorBoard in an iframe.
// Drawn with the view it shares with Colab's output (js/view.js).
//
// The iframe URL is resolved here, in the browser, because only the browser knows where the notebook page
// came from: the kernel cannot tell a local Jupyter from one behind JupyterHub's proxy, Kaggle or VS Code.
// The kernel hands over its host's routes (nbboard/hosts.py), in order; each is a URL template:
//   - %PORT%: the port; a route the host vouches for (probe: false, e.g. TENSORBOARD_PROXY_URL) is used as is;
//   - %PAGE_LOOPBACK%: the page is on this machine (localhost): TensorBoard directly (skipped otherwise);
//   - %ORIGIN%%BASE%: the page's Jupyter base URL (jupyter-server-proxy; skipped on a page without one);
//   - page "remote": the browser's own loopback, where VS Code and `ssh -L` forward the kernel's ports, only
//     for a page that came from elsewhere.
// The first route that answers a probe wins; if none does, the board says it is unreachable from this browser
// and how to fix it (the kernel's remote_hint: the ssh -L line, the local URL, %board --tunnel).
// Shipped as is (no build step); nbboard/frontend.py inlines view.js and frame_park.js, and anywidget loads it
// as an ES module. A re-run of the cell shows the same live TensorBoard document again (js/frame_park.js).
import { ACTION, STATUS, drawHeader, el, httpLink, makeFrame, message, statusMessage } from "./view.js";
import { adopt, dropBoard, forget, keep } from "./frame_park.js";

const PROBE_TIMEOUT_MS = 4000;

function prefixPath(model) {
  const p = (model.get("path_prefix") || "").replace(/^\/+|\/+$/g, "");
  return p ? `${p}/` : "";
}

// Jupyter's base URL is a path of the page's own server ("/", "/user/me/"). Anything else is refused: it
// follows the page's origin in "%ORIGIN%%BASE%", so "@evil.example/" or ".evil.example/" would name another host,
// and an element of that id may come from a notebook's own HTML on a front end without Jupyter's (VS Code's).
const BASE_PATH = /^\/(?![/\\])[^\\]*$/;

function basePath(base) {
  if (typeof base !== "string" || !BASE_PATH.test(base)) return null;
  return base.endsWith("/") ? base : `${base}/`;
}

export function jupyterBaseUrl(doc = document) {
  const config = doc.getElementById("jupyter-config-data");
  if (config) {
    try {
      const base = JSON.parse(config.textContent).baseUrl;
      if (base) return basePath(base);
    } catch (_e) {
      /* not JSON: fall through */
    }
  }
  return basePath(doc.body && doc.body.dataset && doc.body.dataset.baseUrl);
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

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function parsed(url, loc) {
  try {
    return new URL(url, loc.href);
  } catch (_e) {
    return null;
  }
}

// A route's URL for this page, or null when the route does not apply here.
export function routeUrl(route, port, win = globalThis) {
  const loc = win.location;
  const local = LOCAL_HOSTS.has(loc.hostname);
  if (route.page === "remote" && local) return null;
  let url = String(route.url);
  if (url.includes("%PAGE_LOOPBACK%")) {
    if (!local) return null;
    // Keep the page's own loopback name: "localhost" and "127.0.0.1" are different sites, and a cross-site
    // iframe loses localStorage, which TensorBoard needs. Browsers try 127.0.0.1 for "localhost" too; only an
    // IPv6 page ([::1]) is sent to 127.0.0.1, where TensorBoard listens.
    url = url.replaceAll("%PAGE_LOOPBACK%", loc.hostname === "localhost" ? "localhost" : "127.0.0.1");
  }
  if (url.includes("%BASE%")) {
    const base = jupyterBaseUrl(win.document);
    if (!base) return null;
    url = url.replaceAll("%BASE%", base);
  }
  url = url.replaceAll("%ORIGIN%", loc.origin).replaceAll("%PORT%", String(port));
  url = url.endsWith("/") ? url : `${url}/`;
  // Only a web page is framed (never javascript: or data:, which would run in the notebook's page), and a route
  // that claims the page's origin (probed with its cookies) never leads anywhere else.
  const target = parsed(url, loc);
  if (!target || (target.protocol !== "http:" && target.protocol !== "https:")) return null;
  if (route.same_origin && target.origin !== loc.origin) return null;
  return url;
}

export async function resolveBoardUrl(model, win = globalThis) {
  const port = model.get("port");
  const suffix = prefixPath(model);
  const tried = [];
  for (const route of model.get("routes") || []) {
    const base = routeUrl(route, port, win);
    if (base === null) continue;
    const url = base + suffix;
    if (!route.probe) return { url, via: route.via, tried };
    tried.push(url);
    if (await probe(url, route.same_origin)) return { url, via: route.via, tried };
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

  function elapsed() {
    const started = model.get("started_at");
    return started ? Date.now() / 1000 - started : 0;
  }

  // The state the shared view draws from (js/view.js).
  function state() {
    const s = {};
    for (const name of ["status", "logdir", "port", "pid", "started_at", "error", "note", "kernel_user", "kernel_host"]) {
      s[name] = model.get(name);
    }
    return s;
  }

  let adopting = null; // stops waiting to move a parked frame into this view

  function stopAdopting() {
    if (adopting) adopting();
    adopting = null;
  }

  function show(box) {
    stopAdopting();
    forget(body.querySelector("iframe"));
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
      if (frame) model.send({ type: ACTION.SHOWN });
    });
    if (!adopting) showFrame(url, null);
  }

  function showFrame(url, adopted) {
    let frame = adopted;
    if (frame) {
      frame.title = `TensorBoard on port ${model.get("port")}`;
      frame.style.height = `${model.get("height")}px`;
    } else {
      frame = makeFrame(url, model.get("port"), model.get("height"));
      // Tell the kernel once the browser has loaded TensorBoard here: it prepares the next standby after that,
      // not while this browser is still busy with TensorBoard's 6 MB of JavaScript.
      frame.addEventListener("load", () => model.send({ type: ACTION.SHOWN }), { once: true });
      body.replaceChildren(frame);
    }
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
    host.dataset.state = status;
    drawHeader({ badge, title, details }, state(), elapsed(), resolved && resolved.via);
    const live = status === STATUS.RUNNING;
    stopButton.disabled = !(live || status === STATUS.STARTING) || !model.get("pid");
    reloadButton.disabled = !live;
    openLink.style.display = live && resolved && resolved.url ? "" : "none";
    if (resolved && resolved.url) openLink.href = resolved.url;
    const tunnel = model.get("tunnel_open");
    tunnelLink.style.display = tunnel ? "" : "none";
    closeTunnel.style.display = tunnel ? "" : "none";
  }

  async function updateBody() {
    const status = model.get("status");
    const shown = statusMessage(state(), elapsed());
    if (shown) {
      show(shown);
      return;
    }
    if (status === STATUS.CHOOSE) {
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
      show(message("choose", "No logdir given. These directories hold event files; start TensorBoard on:", list));
      if (note) body.firstChild.append(el("div", { class: "nbboard-hint" }, note));
      return;
    }
    const r = await ensureUrl();
    if (model.get("status") !== STATUS.RUNNING) return;
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
    if ((model.get("routes") || []).some((route) => route.page === "remote")) {
      // Forwarding the port would help (the host has a route for it; Kaggle's, say, has none).
      const alt = jupyterBaseUrl(document) ? " (or installing jupyter-server-proxy on the Jupyter server)" : "";
      hint.append(el("div", {}, `After forwarding${alt}, press Reload to show it here.`));
    }
    show(message("unreachable", "TensorBoard is running, but not reachable from here.", hint));
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
    model.send({ type: ACTION.TUNNEL_URL });
  });
  const onCustom = (msg) => {
    if (!msg || msg.type !== ACTION.TUNNEL_URL) return;
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
    model.send({ type: ACTION.CLOSE_TUNNEL });
  });
  stopButton.addEventListener("click", () => {
    stopButton.disabled = true;
    badge.textContent = "stopping";
    model.send({ type: ACTION.STOP });
  });

  const onChange = () => {
    if (model.get("status") !== STATUS.RUNNING) {
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
    if (status === STATUS.STARTING) {
      updateHeader();
      const box = body.querySelector(".nbboard-progress");
      if (box) box.replaceWith(statusMessage(state(), elapsed()));
    } else if (status === STATUS.RUNNING) {
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
