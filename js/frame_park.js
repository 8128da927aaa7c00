// The board's live TensorBoard document outlives its output: a cell re-run, or a re-run after a kernel
// restart, shows the very same frame again instead of loading TensorBoard (6 MB of JavaScript) anew.
//
// Removing an iframe from the page destroys its document, and the front end (JupyterLab) clears a cell's
// output by removing it before the new output's view exists. So the containers of a shown frame's output
// (the view's element and its nearest ancestors) get guards: just before one of them removes the frame,
// it is moved to a hidden container of the page with Element.prototype.moveBefore, which keeps the
// frame's document alive (Chromium 133+). A view of the same board opened within TTL_MS moves it into its
// own output: same resolved URL, same board (port, pid, start time), same notebook (its widget manager and
// kernel). Anything else never gets it; a stopped board's frame, a frame parked too long and
// the oldest beyond MAX_PARKED are dropped. Without moveBefore nothing is guarded: the frame is reloaded,
// as before. board.js imports this file; nbboard/widget.py inlines it into the one ES module anywidget loads.

const TTL_MS = 120_000;
const MAX_PARKED = 4;
/** How many ancestors of a view's element get guards: JupyterLab's renderer, output panel and output area. */
const GUARDED_ANCESTORS = 3;

// One registry per page, not per module: each kernel's widget loads this module anew (a restarted kernel's
// board is another instance of it), and the frame parked by the old one must be found by the new one.
const REGISTRY = Symbol.for("nbboard.frame_park.v1");
const state =
  globalThis[REGISTRY] ||
  (globalThis[REGISTRY] = {
    live: new Map(), // frame shown in a view -> { id: its identity, place: its parent } (parked when its output goes)
    parked: new Map(), // identity -> { frame, timer }
    guarded: new WeakSet(),
    shelves: new WeakMap(), // document -> its container of parked frames
    scopes: new WeakMap(),
    nextScope: 1,
  });
const { live, parked, guarded, scopes } = state;

export function canPark(win = globalThis) {
  return Boolean(win.Element && typeof win.Element.prototype.moveBefore === "function");
}

/** The notebook page a view belongs to: its widget manager (one per notebook, kept across restarts) and kernel. */
function scopeOf(model) {
  const manager = model.widget_manager;
  if (!manager || typeof manager !== "object") return "page";
  if (!scopes.has(manager)) scopes.set(manager, state.nextScope++);
  let kernel = "";
  try {
    kernel = (manager.kernel && manager.kernel.id) || "";
  } catch (_e) {
    /* a manager without a kernel: the manager alone */
  }
  return `${scopes.get(manager)}:${kernel}`;
}

/** The board a model shows: a new board on the same port is another board. */
function boardOf(model) {
  return `${model.get("port")}:${model.get("pid")}:${model.get("started_at")}:${model.get("path_prefix") || ""}`;
}

function identity(model, url) {
  return JSON.stringify([scopeOf(model), boardOf(model), url, model.get("logdir")]);
}

/** The page's hidden container of parked frames, found by reference: never by its id, which a Markdown cell or
 * an HTML output may claim too. Its hiding is inline and !important, so no stylesheet of the page can show it;
 * paint containment clips even a descendant a stylesheet makes position:fixed. */
function shelf(doc) {
  if (!state.shelves) state.shelves = new WeakMap(); // a registry made by an older copy of this module
  let box = state.shelves.get(doc);
  if (!box || !box.isConnected) {
    box = doc.createElement("div");
    box.id = "nbboard-parked-frames";
    box.setAttribute("aria-hidden", "true");
    box.inert = true;
    // Off-screen and invisible, but laid out: the frame keeps its size, so nothing re-lays out when it returns.
    const hidden = {
      position: "fixed",
      left: "-100000px",
      top: "0",
      width: "0",
      height: "0",
      overflow: "hidden",
      contain: "paint",
      visibility: "hidden",
      "pointer-events": "none",
    };
    for (const [name, value] of Object.entries(hidden)) box.style.setProperty(name, value, "important");
    doc.body.append(box);
    state.shelves.set(doc, box);
  }
  return box;
}

function drop(id) {
  const entry = parked.get(id);
  if (!entry) return;
  parked.delete(id);
  clearTimeout(entry.timer);
  entry.frame.remove();
}

function park(frame) {
  const shown = live.get(frame);
  live.delete(frame);
  if (!frame.isConnected) return;
  const width = frame.getBoundingClientRect().width;
  try {
    shelf(frame.ownerDocument).moveBefore(frame, null);
  } catch (_e) {
    return; // not movable (another document, a detached ancestor): it goes, as before
  }
  if (width) frame.style.width = `${width}px`;
  const { id, place } = shown;
  drop(id);
  const entry = { frame, timer: setTimeout(() => drop(id), TTL_MS) };
  parked.set(id, entry);
  while (parked.size > MAX_PARKED) drop(parked.keys().next().value);
  // The output was only taken out and put back (its view lives on): the frame goes back to its place.
  setTimeout(() => {
    if (parked.get(id) !== entry || !place.isConnected || place.querySelector("iframe")) return;
    parked.delete(id);
    clearTimeout(entry.timer);
    place.moveBefore(frame, null);
    frame.style.width = "";
    live.set(frame, shown);
  }, 0);
}

function parkWithin(node) {
  for (const frame of [...live.keys()]) {
    if (!frame.isConnected) live.delete(frame);
    else if (node === frame || (node && node.contains && node.contains(frame))) park(frame);
  }
}

/** Park live frames inside whatever ``node`` is about to remove, whichever DOM call removes it. */
function guard(node) {
  if (guarded.has(node)) return;
  guarded.add(node);
  const call = (name, victim) => {
    const original = node[name];
    node[name] = function (...args) {
      parkWithin(victim(this, args));
      return original.apply(this, args);
    };
  };
  call("removeChild", (_self, [child]) => child);
  call("replaceChild", (_self, [, old]) => old);
  call("replaceChildren", (self) => self);
  call("remove", (self) => self);
  call("replaceWith", (self) => self);
  for (const [proto, name] of [
    [Node.prototype, "textContent"],
    [Element.prototype, "innerHTML"],
  ]) {
    const own = Object.getOwnPropertyDescriptor(proto, name);
    Object.defineProperty(node, name, {
      configurable: true,
      get() {
        return own.get.call(this);
      },
      set(value) {
        parkWithin(this);
        own.set.call(this, value);
      },
    });
  }
}

/** Guard the output holding ``host`` once it is in the page (a view's element is attached after render). */
function guardWhenAttached(host, frame) {
  const started = Date.now();
  const step = () => {
    if (!live.has(frame)) return;
    if (!host.isConnected) {
      if (Date.now() - started < TTL_MS) requestAnimationFrame(step);
      return;
    }
    let node = host;
    for (let i = 0; i <= GUARDED_ANCESTORS && node && node !== node.ownerDocument.body; i++) {
      guard(node);
      node = node.parentElement;
    }
  };
  step();
}

/** ``frame`` shows ``url`` for ``model`` in the view whose element is ``host``: park it when the output goes. */
export function keep(frame, host, model, url) {
  if (!canPark()) return;
  live.set(frame, { id: identity(model, url), place: frame.parentNode });
  guardWhenAttached(host, frame);
}

/** The view shows something else (a message): its frame is gone for good. */
export function forget(frame) {
  if (frame) live.delete(frame);
}

/**
 * This very board's parked frame, moved into ``target`` at the first animation frame at which the view is in
 * the page (a view's element is attached after render; the first view attached gets it), then ``then(frame)``,
 * or ``then(null)`` when another view took it first or it cannot be moved: load anew. Returns a function that
 * stops waiting, or null when no such frame is parked.
 */
export function adopt(model, url, target, then) {
  if (!canPark()) return null;
  const id = identity(model, url);
  const scope = scopeOf(model);
  for (const [other, entry] of [...parked]) {
    const [otherScope, , otherUrl, otherLogdir] = JSON.parse(other);
    // This notebook now shows another board at the same address, or for the same logdir: a board is reused
    // while it lives, so the one parked there has stopped (at worst a board is loaded anew).
    if (other !== id && otherScope === scope && (otherUrl === url || otherLogdir === model.get("logdir"))) drop(other);
    else if (!entry.frame.isConnected) parked.delete(other);
  }
  if (!parked.has(id)) return null;
  let waiting = true;
  const started = Date.now();
  const step = () => {
    if (!waiting) return;
    if (!target.isConnected) {
      if (Date.now() - started < TTL_MS) requestAnimationFrame(step);
      return;
    }
    waiting = false;
    const entry = parked.get(id);
    if (!entry) return then(null);
    parked.delete(id);
    clearTimeout(entry.timer);
    try {
      target.moveBefore(entry.frame, null);
    } catch (_e) {
      entry.frame.remove();
      return then(null);
    }
    entry.frame.style.width = "";
    return then(entry.frame);
  };
  requestAnimationFrame(step);
  return () => {
    waiting = false;
  };
}

/** The board stopped (or failed, or is stale): drop its parked frames, whatever their URL. */
export function dropBoard(model) {
  const board = boardOf(model);
  for (const id of [...parked.keys()]) if (JSON.parse(id)[1] === board) drop(id);
}
