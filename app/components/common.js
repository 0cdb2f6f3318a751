// fewlabel components: what the span annotator and the teach card share (no build step).
//
// Components v2 takes one module as a string, so each component's Python puts this file in
// front of the component's own JS (app/components/common.py); the names below are plain
// top-level names of that one module, and each component keeps its own `export default`.
//
// Texts and labels are untrusted corpus data: they reach the page only through
// textContent / createTextNode / setAttribute, never through innerHTML.

const LABEL_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];
const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
const FALLBACK_COLOR = Object.freeze({ bg: "#e2e4e8", fg: "#374151" });
// Keys typed into these (outside the component) belong to them, never to us.
const TEXT_ENTRY =
  "input:not([type='checkbox']):not([type='radio']):not([type='button']):not([type='submit'])," +
  " textarea, select, [contenteditable=''], [contenteditable='true'], [role='textbox']," +
  " [role='combobox'], [role='listbox'], [role='spinbutton'], [role='slider'], [role='grid']," +
  " [role='menu'], [role='dialog']";
// On these, Enter, Space and the arrows do their own thing (click, move); other keys are ours.
const ACTIVATES =
  "button, a[href], input, summary, [role='button'], [role='tab'], [role='radio']," +
  " [role='checkbox'], [role='option'], [role='menuitem']";
const NATIVE_KEYS = new Set(["Enter", " ", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"]);
// How long an action waits for the server's answer before the user may try again.
const BUSY_TIMEOUT_MS = 8000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// The labels Python sent, in legend order, each colour checked (a bad one falls back).
function cleanLabels(list) {
  return (Array.isArray(list) ? list : []).map((l) => ({
    name: String(l.name),
    bg: COLOR_RE.test(l.bg) ? l.bg : FALLBACK_COLOR.bg,
    fg: COLOR_RE.test(l.fg) ? l.fg : FALLBACK_COLOR.fg,
  }));
}

// Time on screen with the tab visible (document.visibilityState): a hidden tab stops the
// clock and showing it again restarts it. start() when a new text or suggestion is drawn.
class VisibleClock {
  constructor() {
    this.ms = 0; // visible time before `from`
    this.from = null; // performance.now() when it last became visible; null: hidden
  }

  start() {
    this.ms = 0;
    this.from = document.visibilityState === "hidden" ? null : performance.now();
  }

  visibilityChanged() {
    const now = performance.now();
    if (document.visibilityState === "hidden") {
      if (this.from !== null) this.ms += now - this.from;
      this.from = null;
    } else if (this.from === null) {
      this.from = now;
    }
  }

  // Whole milliseconds of visible time since start().
  elapsedMs() {
    const running = this.from === null ? 0 : performance.now() - this.from;
    return Math.round(this.ms + running);
  }
}

// What both components' controllers do alike. Streamlit calls the default export again
// whenever `data` changes, with the same parentElement, and calls the returned cleanup only
// when the element unmounts; so one controller lives on the parentElement (host[hostKey])
// and is updated in place. `prefix` is its CSS class prefix.
//
// The busy/seq handshake: an action is sent with the `seq` the page had (sendEvent), and the
// component is busy until a redraw with another `seq` (takeSeq: the server's answer) or
// until BUSY_TIMEOUT_MS pass (busyTimedOut).
class Controller {
  constructor(host, hostKey, prefix) {
    this.host = host;
    this.hostKey = hostKey;
    this.prefix = prefix;
    this.destroyed = false;
    this.version = null;
    this.seq = null;
    this.sentSeq = null; // `seq` when the pending action was sent; a new one is its answer
    this.busy = false;
    this.focusToken = ""; // the last `focus` taken: a new one takes the focus from anywhere
    this.labels = [];
    this.send = () => {};
    this.clock = new VisibleClock();
    this.listeners = [];
  }

  // Listen on the document until destroy(); every controller keeps its clock this way.
  listen(type, handler) {
    document.addEventListener(type, handler);
    this.listeners.push([type, handler]);
  }

  listenKeysAndVisibility() {
    this.listen("keydown", (e) => this.handleKey(e));
    this.listen("visibilitychange", () => this.clock.visibilityChanged());
  }

  // The focusable root element, put in the host by mountRoot.
  makeRoot(ariaLabel, testid) {
    const root = el("div", this.prefix);
    root.tabIndex = 0;
    root.setAttribute("role", "application");
    root.setAttribute("aria-label", ariaLabel);
    root.dataset.testid = testid;
    return root;
  }

  mountRoot(root) {
    // Buttons must not take focus: Enter would then click them instead of acting.
    root.addEventListener("mousedown", (e) => {
      if (e.target.closest("button")) e.preventDefault();
    });
    this.root = root;
    this.host.appendChild(root);
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.busyTimer);
    for (const [type, handler] of this.listeners) document.removeEventListener(type, handler);
    this.root.remove();
    if (this.host[this.hostKey] === this) delete this.host[this.hostKey];
  }

  // Any redraw with a new `seq` is the server's answer to the pending action: true then.
  takeSeq(data) {
    const seq = String(data.seq ?? "");
    const answered = this.busy && seq !== this.sentSeq;
    this.seq = seq;
    if (answered) this.setBusy(false);
    return answered;
  }

  // True when `focus` is new and not empty: the server asks for the keyboard's focus.
  takeFocusToken(data) {
    const focus = String(data.focus ?? "");
    const grab = focus !== "" && focus !== this.focusToken;
    if (grab) this.focusToken = focus;
    return grab;
  }

  focusIfIdle(force = false) {
    // Take the focus from a button or the page, so keys reach us; never from a text field,
    // unless `force` (the server asked: a project was just picked in the select box).
    const active = document.activeElement;
    const typing = active && (active.closest(TEXT_ENTRY) || active.isContentEditable);
    if (force || !typing) this.root.focus({ preventScroll: true });
  }

  kbd(text) {
    return el("kbd", `${this.prefix}-kbd`, text);
  }

  button(className) {
    const button = el("button", className);
    button.type = "button";
    button.tabIndex = -1;
    return button;
  }

  renderHelp(help) {
    this.help.replaceChildren();
    for (const item of Array.isArray(help) ? help : []) {
      const entry = el("span", `${this.prefix}-help-item`);
      entry.append(this.kbd(item[0]), document.createTextNode(` ${item[1]}`));
      this.help.append(entry);
    }
  }

  setHint(message) {
    this.hint = message;
    this.renderStatus();
  }

  setBusy(busy) {
    this.busy = busy;
    this.root.classList.toggle(`${this.prefix}-busy`, busy);
    clearTimeout(this.busyTimer);
    // If the server never answers (connection lost), let the user try again.
    if (busy) {
      this.busyTimer = setTimeout(() => {
        this.setBusy(false);
        this.busyTimedOut();
      }, BUSY_TIMEOUT_MS);
    }
  }

  busyTimedOut() {}

  // Send one action as the trigger value "event"; busy until the answer (takeSeq).
  sendEvent(payload) {
    this.sentSeq = this.seq;
    this.setBusy(true);
    const nonce = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    this.send("event", { ...payload, nonce });
  }

  ownsKey(e) {
    if (this.destroyed || !this.root.isConnected) return false;
    const target = e.composedPath ? e.composedPath()[0] : e.target;
    if (!(target instanceof Element) || this.root.contains(target)) return true;
    if (target.closest(TEXT_ENTRY) || target.isContentEditable) return false;
    return !(target.closest(ACTIVATES) && NATIVE_KEYS.has(e.key));
  }
}
