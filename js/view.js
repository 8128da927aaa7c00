// nbboard's board view, shared by both views: the widget (js/board.js imports this) and Colab's output
// (nbboard/colab.py inlines this with js/colab_board.js). The header, the status messages and the frame are
// drawn here only, so the two cannot drift.
//
// STATUS and ACTION mirror nbboard/boardview.py (tests/test_view_contract.py checks every name).
// Shipped as is (no build step); nbboard/frontend.py inlines it for anywidget and for Colab.

export const STATUS = Object.freeze({
  STARTING: "starting",
  RUNNING: "running",
  FAILED: "failed",
  STOPPED: "stopped",
  STALE: "stale",
  CHOOSE: "choose",
});

export const ACTION = Object.freeze({
  STOP: "stop",
  CLOSE_TUNNEL: "close_tunnel",
  TUNNEL_URL: "tunnel_url",
  SHOWN: "shown",
});

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

// The board's clock: always two units past the first hour ("2 h 0 min"), so a ticking header keeps its shape
// (nbboard.fmt.clock says the same for Colab's markup without scripts).
export function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 24 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} d ${hours % 24} h`;
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

// The header's words for `s` (the board's state: status, logdir, port, pid, started_at, kernel_user,
// kernel_host), `elapsed` seconds since it started, and `via` (how the browser reached it, or "").
export function drawHeader({ badge, title, details }, s, elapsed, via = "") {
  badge.textContent = s.status;
  badge.dataset.state = s.status;
  title.textContent = s.logdir ? `TensorBoard · ${s.logdir}` : "TensorBoard";
  const parts = [];
  if (s.port) parts.push(`port ${s.port}`);
  if (s.pid) parts.push(`pid ${s.pid}`);
  if (s.status === STATUS.RUNNING && s.started_at) parts.push(`up ${duration(elapsed)}`);
  if (s.status === STATUS.STARTING) parts.push(`starting… ${duration(elapsed)}`);
  if (via && s.status === STATUS.RUNNING) parts.push(`via ${via}`);
  details.textContent = parts.join(" · ");
  details.title = s.kernel_host ? `kernel on ${s.kernel_user ? `${s.kernel_user}@` : ""}${s.kernel_host}` : "";
}

export function message(kind, text, ...extra) {
  return el("div", { class: `nbboard-message nbboard-${kind}` }, el("div", {}, text), ...extra);
}

// The body for a board that shows no TensorBoard (yet, or any more); null while running (or choosing).
// `starting`: what the progress line says before its clock.
export function statusMessage(s, elapsed, starting = "Starting TensorBoard") {
  if (s.status === STATUS.STARTING) return message("progress", `${starting}… ${duration(elapsed)}`);
  if (s.status === STATUS.FAILED) {
    const pre = el("pre", { class: "nbboard-error" }, s.error || "TensorBoard failed to start.");
    return message("failed", "TensorBoard could not start:", pre);
  }
  if (s.status === STATUS.STOPPED) return message("stopped", s.note || `TensorBoard on port ${s.port} was stopped.`);
  if (s.status === STATUS.RUNNING || s.status === STATUS.CHOOSE) return null;
  return message("stale", s.note || `TensorBoard is ${s.status}.`);
}

// TensorBoard's frame: made here only (both views, and whatever keeps a frame across re-renders).
export function makeFrame(url, port, height) {
  const frame = el("iframe", {
    class: "nbboard-frame",
    src: url,
    title: `TensorBoard on port ${port}`,
    allow: "clipboard-write",
  });
  frame.style.height = `${height}px`;
  return frame;
}
