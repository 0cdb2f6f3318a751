// fewlabel teach card: a Streamlit Components v2 module (no build step).
//
// Python mounts it with `data` = {doc, start, end, label, before, span, after, confidence,
// origin, labels, help, version, seq, focus} and listens for one trigger value, "event":
// {action: "accept" | "reject" | "ignore" | "undo", doc, start, end, label, as, ms, nonce}.
// The text comes already cut around the span, so no offset is counted here; start, end and
// label are only echoed back, for the server to check against the suggestion it showed.
//
// Texts and labels are untrusted corpus data: they reach the page only through
// textContent / setAttribute, never through innerHTML.
//
// One answer at a time: a key typed while an answer is on its way is dropped with a hint,
// never applied to a suggestion the annotator has not seen. `ms` is the time the suggestion
// was on screen with the tab visible (the server caps it).

const LABEL_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];
const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
const TEXT_ENTRY =
  "input:not([type='checkbox']):not([type='radio']):not([type='button']):not([type='submit'])," +
  " textarea, select, [contenteditable=''], [contenteditable='true'], [role='textbox']," +
  " [role='combobox'], [role='listbox'], [role='spinbutton'], [role='slider'], [role='grid']," +
  " [role='menu'], [role='dialog']";
const ACTIVATES =
  "button, a[href], input, summary, [role='button'], [role='tab'], [role='radio']," +
  " [role='checkbox'], [role='option'], [role='menuitem']";
const NATIVE_KEYS = new Set(["Enter", " ", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"]);
const KEYS = new Map([
  ["a", "accept"],
  ["Enter", "accept"],
  ["x", "reject"],
  [" ", "ignore"],
  ["s", "ignore"],
  ["u", "undo"],
]);
const BUSY_TIMEOUT_MS = 8000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function kbd(text) {
  return el("kbd", "ft-kbd", text);
}

class TeachCard {
  constructor(host) {
    this.host = host;
    this.destroyed = false;
    this.version = null;
    this.seq = null;
    this.sentSeq = null;
    this.busy = false;
    this.focusToken = "";
    this.labels = [];
    this.send = () => {};
    this.visibleMs = 0;
    this.visibleSince = null;
    this.build();
    this.onKeyDown = (e) => this.handleKey(e);
    this.onVisibility = () => this.visibilityChanged();
    document.addEventListener("keydown", this.onKeyDown);
    document.addEventListener("visibilitychange", this.onVisibility);
  }

  build() {
    const root = el("div", "ft");
    root.tabIndex = 0;
    root.setAttribute("role", "application");
    root.setAttribute("aria-label", "Teach: answer the suggested span");
    root.dataset.testid = "fewlabel-teach";
    this.head = el("div", "ft-head");
    this.textBox = el("div", "ft-text");
    this.textBox.dataset.testid = "fewlabel-teach-text";
    this.textBox.dir = "auto";
    this.actionBar = el("div", "ft-actions");
    this.status = el("div", "ft-status");
    this.status.setAttribute("aria-live", "polite");
    this.legend = el("div", "ft-legend");
    this.help = el("div", "ft-help");
    root.append(this.head, this.textBox, this.actionBar, this.status, this.legend, this.help);
    root.addEventListener("mousedown", (e) => {
      if (e.target.closest("button")) e.preventDefault(); // buttons never take the focus
    });
    this.root = root;
    this.host.appendChild(root);
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.busyTimer);
    document.removeEventListener("keydown", this.onKeyDown);
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.root.remove();
    if (this.host.__fewlabelTeach === this) delete this.host.__fewlabelTeach;
  }

  // ------------------------------------------------------------------ data in

  update(data) {
    const seq = String(data.seq ?? "");
    const answered = this.busy && seq !== this.sentSeq;
    this.seq = seq;
    if (answered) this.setBusy(false);
    this.labels = (Array.isArray(data.labels) ? data.labels : []).map((l) => ({
      name: String(l.name),
      bg: COLOR_RE.test(l.bg) ? l.bg : "#e2e4e8",
      fg: COLOR_RE.test(l.fg) ? l.fg : "#374151",
    }));
    this.suggestion = {
      doc: data.doc,
      start: data.start,
      end: data.end,
      label: String(data.label ?? ""),
    };
    const version = String(data.version ?? "");
    const focus = String(data.focus ?? "");
    const grab = focus !== "" && focus !== this.focusToken;
    if (grab) this.focusToken = focus;
    if (version !== this.version) {
      this.version = version;
      this.startClock();
      this.hint = "";
      this.focusIfIdle(grab);
    } else if (grab) {
      this.focusIfIdle(true);
    }
    this.root.dataset.key = `${data.doc}:${data.start}:${data.end}:${this.suggestion.label}`;
    this.root.dataset.version = version;
    this.render(data);
  }

  startClock() {
    this.visibleMs = 0;
    this.visibleSince = document.hidden ? null : performance.now();
  }

  visibilityChanged() {
    const now = performance.now();
    if (document.hidden && this.visibleSince !== null) {
      this.visibleMs += now - this.visibleSince;
      this.visibleSince = null;
    } else if (!document.hidden && this.visibleSince === null) {
      this.visibleSince = now;
    }
  }

  elapsedMs() {
    const running = this.visibleSince === null ? 0 : performance.now() - this.visibleSince;
    return Math.round(this.visibleMs + running);
  }

  focusIfIdle(force = false) {
    const active = document.activeElement;
    const typing = active && (active.closest(TEXT_ENTRY) || active.isContentEditable);
    if (force || !typing) this.root.focus({ preventScroll: true });
  }

  // ------------------------------------------------------------------ rendering

  colorOf(name) {
    return this.labels.find((l) => l.name === name) || { bg: "#e2e4e8", fg: "#374151" };
  }

  render(data) {
    const s = this.suggestion;
    const color = this.colorOf(s.label);
    const c = Number(data.confidence);
    const pct = data.confidence === null || !Number.isFinite(c) ? "" : `${Math.round(c * 100)}%`;

    const tag = el("span", "ft-tag", s.label);
    tag.style.setProperty("--ft-fg", color.fg);
    this.head.replaceChildren(
      el("span", "ft-q", "Is this "),
      tag,
      el("span", "ft-q", "?"),
      el("span", "ft-meta", [pct && `probability ${pct}`, `from ${String(data.origin ?? "")}`]
        .filter(Boolean).join(" · ")),
    );

    const mark = el("mark", "ft-span");
    mark.append(el("span", "ft-span-text", typeof data.span === "string" ? data.span : ""));
    mark.dataset.testid = "fewlabel-teach-span";
    mark.dataset.label = s.label;
    mark.style.setProperty("--ft-bg", color.bg);
    mark.style.setProperty("--ft-fg", color.fg);
    const label = el("span", "ft-span-label", pct ? `${s.label} ${pct}` : s.label);
    mark.append(label);
    this.textBox.replaceChildren(
      document.createTextNode(typeof data.before === "string" ? data.before : ""),
      mark,
      document.createTextNode(typeof data.after === "string" ? data.after : ""),
    );
    if (mark.scrollIntoView) mark.scrollIntoView({ block: "nearest" });

    this.renderActions();
    this.renderLegend();
    this.renderHelp(data.help);
    this.renderStatus();
  }

  renderActions() {
    const add = (action, title, key, extra) => {
      const button = el("button", `ft-btn ${extra || ""}`.trim());
      button.type = "button";
      button.tabIndex = -1;
      button.dataset.action = action;
      button.append(el("span", "", title), kbd(key));
      button.addEventListener("click", () => this.act(action));
      return button;
    };
    this.actionBar.replaceChildren(
      add("accept", "Accept", "A", "ft-accept"),
      add("reject", "Reject", "X", "ft-reject"),
      add("ignore", "Ignore", "Space"),
      add("undo", "Undo", "U"),
    );
  }

  renderLegend() {
    this.legend.replaceChildren(el("span", "ft-legend-title", "Accept as:"));
    this.labels.forEach((label, i) => {
      const key = LABEL_KEYS[i];
      if (!key) return;
      const button = el("button", "ft-label");
      button.type = "button";
      button.tabIndex = -1;
      button.dataset.label = label.name;
      button.style.setProperty("--ft-bg", label.bg);
      button.style.setProperty("--ft-fg", label.fg);
      button.title = `Accept the span as ${label.name} (key ${key})`;
      button.append(kbd(key), el("span", "", label.name));
      button.addEventListener("click", () => this.act("accept", label.name));
      this.legend.append(button);
    });
  }

  renderHelp(help) {
    this.help.replaceChildren();
    for (const item of Array.isArray(help) ? help : []) {
      const row = el("span", "ft-help-item");
      row.append(kbd(String(item[0])), document.createTextNode(` ${String(item[1])}`));
      this.help.append(row);
    }
  }

  renderStatus() {
    this.status.replaceChildren();
    if (this.hint) this.status.append(el("span", "ft-hint", this.hint));
  }

  setHint(message) {
    this.hint = message;
    this.renderStatus();
  }

  setBusy(busy) {
    this.busy = busy;
    this.root.classList.toggle("ft-busy", busy);
    this.root.dataset.busy = busy ? "1" : "";
    clearTimeout(this.busyTimer);
    if (busy) {
      this.busyTimer = setTimeout(() => {
        this.setBusy(false);
        this.setHint("No answer from the server: try again.");
      }, BUSY_TIMEOUT_MS);
    }
  }

  // ------------------------------------------------------------------ answers

  act(action, asLabel) {
    if (this.busy) {
      this.setHint("Wait for the next suggestion: that key was not applied.");
      return;
    }
    const s = this.suggestion;
    if (!s || s.doc === undefined || s.doc === null) return;
    this.sentSeq = this.seq;
    this.hint = "";
    this.setBusy(true);
    this.send("event", {
      action,
      doc: s.doc,
      start: s.start,
      end: s.end,
      label: s.label,
      as: asLabel || null,
      ms: this.elapsedMs(),
      nonce: `${Date.now()}-${Math.random().toString(36).slice(2)}`,
    });
  }

  ownsKey(e) {
    if (this.destroyed || !this.root.isConnected) return false;
    const target = e.composedPath ? e.composedPath()[0] : e.target;
    if (!(target instanceof Element) || this.root.contains(target)) return true;
    if (target.closest(TEXT_ENTRY) || target.isContentEditable) return false;
    return !(target.closest(ACTIVATES) && NATIVE_KEYS.has(e.key));
  }

  handleKey(e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.isComposing) return;
    if (!this.ownsKey(e)) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const labelIndex = LABEL_KEYS.indexOf(key);
    if (labelIndex >= 0 && labelIndex < this.labels.length) {
      this.act("accept", this.labels[labelIndex].name);
    } else if (KEYS.has(key)) {
      if (e.repeat) {
        e.preventDefault(); // a key held down answers once, not a run of suggestions
        return;
      }
      this.act(KEYS.get(key));
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let ctl = parentElement.__fewlabelTeach;
  if (!ctl || ctl.destroyed) {
    ctl = new TeachCard(parentElement);
    parentElement.__fewlabelTeach = ctl;
  }
  ctl.send = setTriggerValue;
  ctl.update(data || {});
  return () => ctl.destroy();
}
