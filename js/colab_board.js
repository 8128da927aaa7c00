// nbboard's board on Colab: the behaviour of the markup nbboard/colab.py sends as an HTML output.
//
// Colab shows each output in its own frame and draws third-party widgets only through its widget
// manager, so the kernel sends plain HTML (header, state, message: readable without this script)
// and this script brings it to life the way Colab's own tools do:
//   - google.colab.kernel.proxyPort(port, {cache: false}) gives the URL through which this frame
//     reaches TensorBoard on the kernel's machine; ?tensorboardColab=true is TensorBoard's own
//     switch for Colab (it then loads data with GET, as %tensorboard does there);
//   - Stop, Close link and Public link call the kernel with google.colab.kernel.invokeFunction. The
//     callback the kernel registered with google.colab.output.register_callback answers with the
//     board's new markup, which replaces this one (the kernel also updates the output in place).
// A cross-site frame may be refused storage (third-party cookies blocked: incognito windows, privacy
// settings, some browsers by default), and TensorBoard then shows only "Data could not be loaded".
// This frame is as cross-site as TensorBoard's, so it tries its own storage first and, when refused,
// says why and offers TensorBoard in a tab instead.
// The header and the status messages are drawn by the view it shares with the widget (js/view.js), from the
// state in the markup's config; the markup itself is what a reader without scripts sees.
// Shipped as is (no build step); nbboard/colab.py inlines it with view.js after the markup (frontend.script).
import { ACTION, STATUS, drawHeader, el, httpLink, makeFrame, message, statusMessage } from "./view.js";

const TICK_MS = 1000;

function storageAllowed() {
  try {
    const key = "nbboard-storage-check";
    window.localStorage.setItem(key, "1");
    window.localStorage.removeItem(key);
    return true;
  } catch (_e) {
    return false; // SecurityError: this browser refuses storage to cross-site frames
  }
}

function mount(root) {
  root.dataset.mounted = "1";
  const cfg = JSON.parse(root.querySelector("script.nbboard-config").textContent);
  const $ = (selector) => root.querySelector(selector);
  const body = $(".nbboard-body");
  const badge = $(".nbboard-state");
  const openLink = $(".nbboard-open");
  const mountedAt = performance.now();
  let stopping = false; // the badge says so until the kernel answers

  const elapsed = () => cfg.elapsed + (performance.now() - mountedAt) / 1000;
  const header = { badge, title: $(".nbboard-title"), details: $(".nbboard-details") };
  // Colab's progress line names the logdir (its markup's does too).
  const starting = cfg.logdir ? `Starting TensorBoard for ${cfg.logdir}` : "Starting TensorBoard";
  function draw() {
    drawHeader(header, cfg, elapsed());
    const shown = statusMessage(cfg, elapsed(), starting);
    if (shown) body.replaceChildren(shown);
  }
  draw(); // the markup is the no-script version: from here on the shared view draws the same words

  const ticker = setInterval(() => {
    if (!root.isConnected) return clearInterval(ticker);
    if (cfg.status === STATUS.STARTING) draw();
    else if (cfg.status === STATUS.RUNNING && !stopping) drawHeader(header, cfg, elapsed());
  }, TICK_MS);

  const kernel = window.google && window.google.colab && window.google.colab.kernel;
  if (!kernel) return; // not in Colab: the markup says everything
  if (kernel.accessAllowed === false) {
    // An output saved from an earlier session: Colab lets it reach neither the kernel nor its ports.
    if (cfg.status === STATUS.RUNNING || cfg.status === STATUS.STARTING) {
      say("stale", "This output is from an earlier session: run the cell again to show the board.");
    }
    return;
  }
  $(".nbboard-actions").hidden = false;

  function say(kind, text, ...extra) {
    body.replaceChildren(message(kind, text, ...extra));
  }

  async function boardUrl() {
    let base = String(await kernel.proxyPort(cfg.port, { cache: false }));
    if (!base.endsWith("/")) base += "/";
    const prefix = (cfg.path_prefix || "").replace(/^\/+|\/+$/g, "");
    const url = new URL(prefix ? `${base}${prefix}/` : base); // appended, so a prefix cannot leave Colab's proxy
    url.searchParams.set("tensorboardColab", "true");
    return url.toString();
  }

  function showFrame(url) {
    body.replaceChildren(makeFrame(url, cfg.port, cfg.height));
  }

  function explainBlocked(url) {
    const anyway = el("button", { class: "nbboard-button nbboard-anyway" }, "Show it here anyway");
    anyway.addEventListener("click", () => showFrame(url));
    say(
      "blocked",
      "TensorBoard is running, but this browser does not let sites shown inside a page store data " +
        "(third-party cookies are blocked, as in incognito windows), and TensorBoard cannot load here without it.",
      el(
        "div",
        { class: "nbboard-hint" },
        el("a", { class: "nbboard-button nbboard-open-tab", href: url, target: "_blank", rel: "noopener" }, "Open in tab ↗"),
        " ",
        anyway,
      ),
      el(
        "div",
        { class: "nbboard-hint" },
        "To see it in the notebook, allow third-party cookies for this site (in Chrome: the eye icon in the " +
          "address bar), then press Reload. If the tab does not load either, run ",
        el("code", {}, "%board --tunnel"),
        " for a protected public link.",
      ),
    );
  }

  async function show() {
    let url;
    try {
      url = await boardUrl();
    } catch (e) {
      say("unreachable", `Colab gave no URL for port ${cfg.port} (${e && e.message ? e.message : e}). Press Reload to try again.`);
      return;
    }
    openLink.href = url;
    openLink.hidden = false;
    if (storageAllowed()) showFrame(url);
    else explainBlocked(url);
  }

  function note(text) {
    const old = root.querySelector(".nbboard-note");
    if (old) old.remove();
    body.before(el("div", { class: "nbboard-message nbboard-note" }, `nbboard: ${text}`));
  }

  // Runs a button in the kernel; the answer is the board's new markup, or why nothing happened.
  async function act(action, button) {
    button.disabled = true;
    let answer = null;
    try {
      const reply = await kernel.invokeFunction(cfg.callback, [cfg.view, action], {});
      answer = (reply && reply.data && reply.data["application/json"]) || { error: "the kernel gave no answer" };
    } catch (e) {
      const why = e && e.message ? e.message : String(e);
      answer = { error: `the kernel did not run this button (${why}). If the runtime restarted, run the cell again.` };
    }
    if (answer.html) {
      replace(root, answer.html);
    } else {
      button.disabled = false;
      stopping = false;
      badge.textContent = cfg.status;
      if (answer.error) note(answer.error);
    }
    return answer;
  }

  const stopButton = $(".nbboard-stop");
  stopButton.addEventListener("click", () => {
    stopping = true;
    badge.textContent = "stopping";
    act(ACTION.STOP, stopButton);
  });
  $(".nbboard-reload").addEventListener("click", () => {
    const frame = body.querySelector("iframe");
    if (frame) frame.src = frame.src;
    else show(); // asks Colab again and checks storage again (after the user allowed it)
  });
  const closeTunnel = $(".nbboard-close-tunnel");
  if (closeTunnel) closeTunnel.addEventListener("click", () => act(ACTION.CLOSE_TUNNEL, closeTunnel));
  const tunnel = $(".nbboard-tunnel");
  if (tunnel) {
    tunnel.addEventListener("click", async () => {
      const answer = await act(ACTION.TUNNEL_URL, tunnel);
      tunnel.disabled = false;
      const link = answer && httpLink(answer.tunnel_url);
      if (link) el("a", { href: link, target: "_blank", rel: "noopener" }).click();
      else if (answer && answer.tunnel_url) note("nbboard: the public link is not an http(s) URL");
    });
  }
  if (!cfg.callback) {
    for (const button of root.querySelectorAll(".nbboard-stop, .nbboard-close-tunnel, .nbboard-tunnel")) {
      button.disabled = true;
      button.title = "google.colab.output is missing in this kernel: use %board kill";
    }
  }
  if (cfg.status === STATUS.RUNNING) show();
}

function replace(root, markup) {
  const template = document.createElement("template");
  template.innerHTML = markup;
  const fresh = template.content.querySelector(".nbboard-colab");
  if (!fresh) return;
  root.replaceWith(fresh);
  mount(fresh);
}

for (const root of document.querySelectorAll(".nbboard-colab:not([data-mounted])")) mount(root);
