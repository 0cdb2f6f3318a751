// fewlabel span annotator: a Streamlit Components v2 module (no build step).
//
// Python mounts it with `data` = {doc, text, words, spans, suggestions, labels, actions,
// version, seq, dirty, focus, help} and listens for one trigger value, "event":
// {action: "save" | "skip" | "undo", doc, spans, seconds, nonce}.
//
// The annotator's clock: `seconds` is the time from this text being drawn (a new `version`)
// to the action, counting only time the tab was visible (document.visibilityState): a
// hidden tab stops the clock and showing it again restarts it. The server caps it at
// core.defaults.IDLE_CAP_S; a redraw that keeps the text (an error, a rerun) keeps the clock.
//
// Offsets cross the boundary as code points, as Python counts them; JS strings count UTF-16
// units, in which an emoji or any character outside the Basic Multilingual Plane is two.
// `update` converts incoming offsets to units once and `act` converts outgoing spans back,
// so everything in between slices `this.text` natively.
//
// Texts and labels are untrusted corpus data: they reach the page only through
// textContent / createTextNode / setAttribute, never through innerHTML.
//
// common.js (prepended by span_annotator.py) gives el, cleanLabels, the clock, the key guards
// and the Controller: one lives on the parentElement, with the busy/seq handshake.
//
// Keys typed while a save, skip or undo is on its way (until the server's answer arrives
// with the next text) are held, in order, not dropped. The rule that keeps this safe: a held
// key never applies to a text the annotator has not seen rendered. Held keys are replayed
// one per painted frame once the next text is on screen (in a background tab, rAF waits
// until the tab is shown), so every state a key acts on has been drawn. Held Enter and S
// save or skip only after a held edit on the same text (a label, an arrow, A, ...): they
// then confirm work typed for that text, while a bare repeated Enter or S (a double press)
// would save or skip an unseen text untouched, so it is dropped with a hint. A held U undoes
// the save the annotator just made, which is what it meant. If the answer is an error (the
// same text again) or never comes, held keys are dropped with a hint, never applied to the
// old text.

const SERVER_ACTIONS = ["save", "skip", "undo"];
// Keys that talk to the server, and the other keys worth holding while it answers.
const ACTION_KEYS = new Map([["Enter", "save"], ["s", "skip"], ["u", "undo"]]);
const EDIT_KEYS = new Set(["a", "Escape", "Backspace", "Delete", "ArrowLeft", "ArrowRight"]);
const MAX_HELD = 256;

// unitOf[i] = the UTF-16 offset of code point i (length: code points + 1); pointOf is the
// inverse on those offsets, -1 inside a surrogate pair.
function offsetMaps(text) {
  const unitOf = [0];
  for (let u = 0; u < text.length; ) {
    u += text.codePointAt(u) > 0xffff ? 2 : 1;
    unitOf.push(u);
  }
  const pointOf = new Int32Array(text.length + 1).fill(-1);
  unitOf.forEach((u, i) => {
    pointOf[u] = i;
  });
  return { unitOf, pointOf };
}

// Run fn once the current DOM has been painted (the frame after the next one).
function afterPaint(fn) {
  requestAnimationFrame(() => requestAnimationFrame(fn));
}

function toInt(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.trunc(n) : NaN;
}

class SpanAnnotator extends Controller {
  constructor(host) {
    super(host, "__fewlabelAnnotator", "fl");
    this.doc = null;
    this.text = "";
    this.words = [];
    this.spans = [];
    this.suggestions = [];
    this.actions = new Set(SERVER_ACTIONS);
    this.history = [];
    this.sel = null; // {a, b, fromClick}: word indices, a = anchor
    this.press = null; // a mouse press in progress
    this.held = []; // keys typed while busy: {key, shift, ctrl}
    this.heldEdits = 0; // held keys applied to the current text, other than actions
    this.drainPending = false;
    this.dirty = false;
    this.build();
    this.listenKeysAndVisibility();
    this.listen("mouseup", (e) => this.handleMouseUp(e));
  }

  // Seconds of visible time since the text was drawn (the annotator's clock), to the ms.
  elapsed() {
    return this.clock.elapsedMs() / 1000;
  }

  build() {
    const root = this.makeRoot("Span annotator", "fewlabel-annotator");

    this.legend = el("div", "fl-legend");
    this.legend.setAttribute("role", "toolbar");
    this.legend.setAttribute("aria-label", "Labels");

    this.textBox = el("div", "fl-text");
    this.textBox.dataset.testid = "fewlabel-text";
    this.textBox.dir = "auto"; // right-to-left texts read right to left; the UI stays as is
    this.textBox.addEventListener("mousedown", (e) => this.handleMouseDown(e));
    this.textBox.addEventListener("mouseover", (e) => this.handleMouseOver(e));

    const footer = el("div", "fl-footer");
    this.status = el("div", "fl-status");
    this.status.setAttribute("aria-live", "polite");
    this.actionBar = el("div", "fl-actions");
    footer.append(this.status, this.actionBar);

    this.help = el("div", "fl-help");

    root.append(this.legend, this.textBox, footer, this.help);
    this.mountRoot(root);
  }

  // ------------------------------------------------------------------ data in

  update(data) {
    const answered = this.takeSeq(data);
    // Every label is kept (spans may use any); only the first nine get number keys.
    this.labels = cleanLabels(data.labels);
    this.labelNames = new Set(this.labels.map((l) => l.name));
    this.actions = new Set(
      (Array.isArray(data.actions) ? data.actions : SERVER_ACTIONS).map(String)
    );
    const text = typeof data.text === "string" ? data.text : "";
    if (text !== this.text || !this.unitOf) Object.assign(this, offsetMaps(text));
    const points = this.unitOf.length - 1;
    const words = (Array.isArray(data.words) ? data.words : [])
      .map((w) => [toInt(w[0]), toInt(w[1])])
      .filter(([s, e]) => s >= 0 && e > s && e <= points)
      .map(([s, e]) => [this.unitOf[s], this.unitOf[e]]);
    const newVersion = String(data.version ?? "");
    const reset = newVersion !== this.version || text !== this.text;
    // After a project change the select box that changed it keeps the keyboard: take it.
    const grab = this.takeFocusToken(data);
    this.text = text;
    this.words = words;
    this.doc = data.doc;
    this.suggestions = this.clean(data.suggestions, true);
    if (reset) {
      this.version = newVersion;
      this.spans = this.clean(data.spans, false);
      this.history = [];
      this.sel = null;
      this.dirty = Boolean(data.dirty);
      this.heldEdits = 0;
      this.focusIfIdle(grab);
    } else if (grab) {
      this.focusIfIdle(true);
    }
    this.hint = "";
    this.renderLegend();
    this.renderActions();
    this.renderHelp(data.help);
    this.render();
    if (reset) this.clock.start(); // a new text is on screen: its clock starts now
    if (answered && !reset) this.dropHeld("the text did not change");
    this.scheduleDrain();
  }

  // A code-point offset from Python as a UTF-16 offset (NaN when not an offset).
  unit(point) {
    const i = toInt(point);
    if (!(i >= 0)) return NaN;
    return this.unitOf[Math.min(i, this.unitOf.length - 1)];
  }

  // Keep well-formed spans (known label, inside the text), snapped to whole words.
  // Offsets come in as code points and are kept as UTF-16 units.
  clean(list, withConfidence) {
    const out = [];
    for (const raw of Array.isArray(list) ? list : []) {
      if (!raw || !this.labelNames.has(String(raw.label))) continue;
      const range = this.wordRange(this.unit(raw.start), this.unit(raw.end));
      if (!range) continue;
      const span = {
        start: this.words[range[0]][0],
        end: this.words[range[1]][1],
        label: String(raw.label),
      };
      if (withConfidence) {
        const c = Number(raw.confidence);
        span.confidence = Number.isFinite(c) ? c : null;
      }
      out.push(span);
    }
    out.sort((x, y) => x.start - y.start || x.end - y.end);
    return out;
  }

  // First and last word touching [start, end), or null.
  wordRange(start, end) {
    if (!(end > start)) return null;
    let a = -1;
    let b = -1;
    this.words.forEach(([s, e], i) => {
      if (s < end && e > start) {
        if (a < 0) a = i;
        b = i;
      }
    });
    return a < 0 ? null : [a, b];
  }

  // ------------------------------------------------------------------ rendering

  renderLegend() {
    this.legend.replaceChildren();
    this.labels.forEach((label, i) => {
      const button = this.button("fl-label");
      button.dataset.label = label.name;
      button.style.setProperty("--fl-bg", label.bg);
      button.style.setProperty("--fl-fg", label.fg);
      const key = LABEL_KEYS[i];
      button.title = `Label the selected words ${label.name}` + (key ? ` (key ${key})` : "");
      if (key) button.append(this.kbd(key));
      button.append(el("span", "fl-label-name", label.name));
      button.addEventListener("click", () => {
        if (!this.waiting()) this.applyLabel(i);
      });
      this.legend.append(button);
    });
  }

  renderActions() {
    this.actionBar.replaceChildren();
    const add = (action, title, key, extraClass) => {
      const button = this.button(`fl-btn ${extraClass || ""}`.trim());
      button.dataset.action = action;
      button.append(el("span", "", title), this.kbd(key));
      button.addEventListener("click", () => {
        if (!this.waiting()) this.act(action); // held keys come first, in order
      });
      this.actionBar.append(button);
      return button;
    };
    this.acceptButton = add("accept", "Accept suggestions", "A");
    if (this.actions.has("undo")) add("undo", "Undo last", "U");
    if (this.actions.has("skip")) add("skip", "Skip", "S");
    if (this.actions.has("save")) add("save", "Save", "Enter", "fl-primary");
  }

  render() {
    const n = this.words.length;
    const spanOf = new Array(n).fill(-1);
    const spanRanges = this.spans.map((s) => this.wordRange(s.start, s.end));
    spanRanges.forEach((r, k) => {
      for (let i = r[0]; i <= r[1]; i++) spanOf[i] = k;
    });
    // A suggestion shows only where no accepted span overlaps it.
    const suggOf = new Array(n).fill(-1);
    const suggRanges = this.suggestions.map((s) => this.wordRange(s.start, s.end));
    this.visibleSuggestions = 0;
    suggRanges.forEach((r, k) => {
      for (let i = r[0]; i <= r[1]; i++) if (spanOf[i] >= 0 || suggOf[i] >= 0) return;
      for (let i = r[0]; i <= r[1]; i++) suggOf[i] = k;
      this.visibleSuggestions += 1;
    });

    this.wordEls = new Array(n);
    this.gapEls = new Array(n + 1).fill(null);
    const frag = document.createDocumentFragment();
    const text = this.text;
    let pos = 0;
    const gap = (parent, upto, before) => {
      if (upto <= pos) return;
      const g = el("span", "fl-gap", text.slice(pos, upto));
      g.dataset.gap = String(before);
      this.gapEls[before] = g;
      parent.append(g);
      pos = upto;
    };
    const word = (parent, i) => {
      const w = el("span", "fl-w", text.slice(this.words[i][0], this.words[i][1]));
      w.dataset.i = String(i);
      this.wordEls[i] = w;
      parent.append(w);
      pos = this.words[i][1];
    };
    const group = (className, range, label, tagText, title, dataKey, index) => {
      const box = el("mark", className);
      const colors = this.labels.find((l) => l.name === label);
      box.style.setProperty("--fl-bg", colors.bg);
      box.style.setProperty("--fl-fg", colors.fg);
      box.dataset[dataKey] = String(index);
      box.dataset.label = label;
      box.title = title;
      for (let i = range[0]; i <= range[1]; i++) {
        if (i > range[0]) gap(box, this.words[i][0], i);
        word(box, i);
      }
      box.append(el("span", "fl-tag", tagText));
      return box;
    };

    let i = 0;
    while (i < n) {
      gap(frag, this.words[i][0], i);
      if (spanOf[i] >= 0) {
        const k = spanOf[i];
        const s = this.spans[k];
        frag.append(group("fl-span", spanRanges[k], s.label, s.label,
          `${s.label}: click to remove`, "span", k));
        i = spanRanges[k][1] + 1;
      } else if (suggOf[i] >= 0) {
        const k = suggOf[i];
        const s = this.suggestions[k];
        const pct = s.confidence === null ? "" : ` ${Math.round(s.confidence * 100)}%`;
        frag.append(group("fl-sugg", suggRanges[k], s.label, `${s.label}?${pct}`,
          `Suggested ${s.label}${pct}: click to accept`, "sugg", k));
        i = suggRanges[k][1] + 1;
      } else {
        word(frag, i);
        i += 1;
      }
    }
    gap(frag, text.length, n);
    if (!text) frag.append(el("span", "fl-empty", "(empty text)"));
    this.textBox.replaceChildren(frag);
    this.renderSelection();
    this.renderStatus();
  }

  renderSelection() {
    const [a, b] = this.selRange() || [-1, -2];
    this.wordEls.forEach((w, i) => w.classList.toggle("fl-sel", i >= a && i <= b));
    this.gapEls.forEach((g, i) => g && g.classList.toggle("fl-sel", i > a && i <= b));
    this.root.classList.toggle("fl-has-sel", a >= 0);
  }

  renderStatus() {
    const parts = [];
    const n = this.spans.length;
    parts.push(`${n} span${n === 1 ? "" : "s"}`);
    if (this.visibleSuggestions) {
      const m = this.visibleSuggestions;
      parts.push(`${m} suggestion${m === 1 ? "" : "s"}`);
    }
    if (this.dirty) parts.push("unsaved changes");
    this.status.replaceChildren(el("span", "fl-counts", parts.join(" · ")));
    if (this.hint) this.status.append(el("span", "fl-hint", this.hint));
    if (this.acceptButton) this.acceptButton.hidden = this.visibleSuggestions === 0;
  }

  busyTimedOut() {
    this.dropHeld("no answer from the server");
  }

  // True while keys are held rather than applied: an action is pending, or held keys remain.
  waiting() {
    return this.busy || this.held.length > 0;
  }

  // ------------------------------------------------------------------ edits

  selRange() {
    if (!this.sel) return null;
    return [Math.min(this.sel.a, this.sel.b), Math.max(this.sel.a, this.sel.b)];
  }

  edit(nextSpans) {
    this.history.push(this.spans);
    if (this.history.length > 100) this.history.shift();
    this.spans = nextSpans.sort((x, y) => x.start - y.start || x.end - y.end);
    this.dirty = true;
    this.hint = "";
  }

  applyLabel(index) {
    const label = this.labels[index];
    if (!label) return;
    const range = this.selRange();
    if (!range) {
      this.setHint("Select words first: drag across them, or click the first and last word.");
      return;
    }
    const start = this.words[range[0]][0];
    const end = this.words[range[1]][1];
    const kept = this.spans.filter((s) => s.end <= start || s.start >= end);
    this.edit([...kept, { start, end, label: label.name }]);
    this.sel = null;
    this.render();
  }

  removeSpan(k) {
    this.edit(this.spans.filter((_, i) => i !== k));
    this.render();
  }

  removeSelected() {
    const range = this.selRange();
    if (!range) return;
    const start = this.words[range[0]][0];
    const end = this.words[range[1]][1];
    const kept = this.spans.filter((s) => s.end <= start || s.start >= end);
    if (kept.length !== this.spans.length) this.edit(kept);
    this.sel = null;
    this.render();
  }

  acceptSuggestions(only) {
    const chosen = only === undefined ? this.suggestions : [this.suggestions[only]];
    const next = [...this.spans];
    // Most confident first, so an overlap keeps the better suggestion.
    const ordered = [...chosen].sort((x, y) => (y.confidence ?? 0) - (x.confidence ?? 0));
    for (const s of ordered) {
      if (next.some((t) => t.start < s.end && s.start < t.end)) continue;
      next.push({ start: s.start, end: s.end, label: s.label });
    }
    if (next.length === this.spans.length) {
      this.setHint("No suggestions left to accept.");
      return;
    }
    this.edit(next);
    this.render();
  }

  undoEdit() {
    if (!this.history.length) {
      this.setHint("Nothing to undo on this text.");
      return;
    }
    this.spans = this.history.pop();
    this.dirty = true;
    this.sel = null;
    this.render();
  }

  act(action) {
    if (action === "accept") {
      this.acceptSuggestions();
      return;
    }
    if (!this.actions.has(action) || this.busy) return;
    this.sendEvent({
      action,
      doc: this.doc,
      spans: this.spans.map(({ start, end, label }) => ({
        start: this.pointOf[start],
        end: this.pointOf[end],
        label,
      })),
      seconds: this.elapsed(),
    });
  }

  // ------------------------------------------------------------------ mouse

  pointAt(target) {
    const node = target instanceof Element ? target : target && target.parentElement;
    if (!node) return {};
    const w = node.closest("[data-i]");
    const span = node.closest("[data-span]");
    const sugg = node.closest("[data-sugg]");
    return {
      word: w ? toInt(w.dataset.i) : null,
      span: span ? toInt(span.dataset.span) : null,
      sugg: sugg ? toInt(sugg.dataset.sugg) : null,
    };
  }

  handleMouseDown(e) {
    if (e.button !== 0 || this.waiting()) return;
    e.preventDefault(); // no native text selection; we draw our own
    this.root.focus({ preventScroll: true });
    const at = this.pointAt(e.target);
    if (e.shiftKey && this.sel && at.word !== null) {
      this.sel = { a: this.sel.a, b: at.word, fromClick: false };
      this.renderSelection();
      return;
    }
    this.press = { ...at, moved: false };
  }

  handleMouseOver(e) {
    if (!this.press || this.press.word === null) return;
    const at = this.pointAt(e.target);
    if (at.word === null || (at.word === this.press.word && !this.press.moved)) return;
    this.press.moved = true;
    this.sel = { a: this.press.word, b: at.word, fromClick: false };
    this.renderSelection();
  }

  handleMouseUp() {
    const press = this.press;
    this.press = null;
    if (!press || press.moved) return;
    if (press.span !== null) {
      this.removeSpan(press.span);
    } else if (press.sugg !== null) {
      this.acceptSuggestions(press.sugg);
    } else if (press.word !== null) {
      const sel = this.sel;
      if (sel && sel.fromClick && sel.a === sel.b && sel.a === press.word) {
        this.sel = null; // a second click on the same word deselects it
      } else if (sel && sel.fromClick && sel.a === sel.b) {
        this.sel = { a: sel.a, b: press.word, fromClick: false }; // first word, then last
      } else {
        this.sel = { a: press.word, b: press.word, fromClick: true };
      }
      this.hint = "";
      this.renderSelection();
      this.renderStatus();
    } else {
      this.sel = null;
      this.renderSelection();
    }
  }

  // ------------------------------------------------------------------ keyboard

  handleKey(e) {
    if (e.defaultPrevented || e.altKey || e.isComposing || !this.ownsKey(e)) return;
    const stroke = {
      key: e.key.length === 1 ? e.key.toLowerCase() : e.key,
      shift: e.shiftKey,
      ctrl: e.ctrlKey || e.metaKey,
    };
    const handled = this.waiting() ? this.hold(stroke) : this.apply(stroke);
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  }

  apply(stroke) {
    if (stroke.ctrl) {
      if (stroke.key !== "z" || stroke.shift) return false;
      this.undoEdit();
      return true;
    }
    return this.keyAction(stroke.key, stroke.shift);
  }

  // Keep a key typed while the next text is on its way (see the rule at the top).
  hold(stroke) {
    const action = stroke.ctrl ? null : ACTION_KEYS.get(stroke.key);
    const labelIndex = LABEL_KEYS.indexOf(stroke.key);
    const ours = stroke.ctrl
      ? stroke.key === "z" && !stroke.shift
      : action
        ? this.actions.has(action)
        : labelIndex >= 0
          ? labelIndex < this.labels.length
          : EDIT_KEYS.has(stroke.key);
    if (!ours) return false;
    if (this.held.length < MAX_HELD) this.held.push(stroke);
    else this.setHint("Too many keys typed ahead: the last ones were not kept.");
    return true;
  }

  scheduleDrain() {
    if (this.drainPending || this.busy || !this.held.length) return;
    this.drainPending = true;
    afterPaint(() => {
      this.drainPending = false;
      this.drainOne();
    });
  }

  // Apply the oldest held key to the text on screen, then wait for a paint before the next.
  drainOne() {
    if (this.destroyed || this.busy || !this.held.length) return;
    const stroke = this.held.shift();
    const action = stroke.ctrl ? null : ACTION_KEYS.get(stroke.key);
    if ((action === "save" || action === "skip") && this.heldEdits === 0) {
      const key = action === "save" ? "Enter" : "S";
      this.setHint(`${key} came before this text was shown and was not applied: ` +
        `press ${key} again to ${action} it.`);
    } else {
      this.apply(stroke);
      if (!action) this.heldEdits += 1;
    }
    this.scheduleDrain();
  }

  dropHeld(why) {
    if (!this.held.length) return;
    const n = this.held.length;
    this.held = [];
    this.setHint(`${n} key${n === 1 ? "" : "s"} typed while waiting ${n === 1 ? "was" : "were"} ` +
      `not applied (${why}).`);
  }

  keyAction(key, shift) {
    const labelIndex = LABEL_KEYS.indexOf(key);
    if (labelIndex >= 0 && labelIndex < this.labels.length) {
      this.applyLabel(labelIndex);
      return true;
    }
    switch (key) {
      case "Enter":
        if (this.actions.has("save")) this.act("save");
        return this.actions.has("save");
      case "s":
        if (this.actions.has("skip")) this.act("skip");
        return this.actions.has("skip");
      case "u":
        if (this.actions.has("undo")) this.act("undo");
        return this.actions.has("undo");
      case "a":
        this.acceptSuggestions();
        return true;
      case "Escape":
        this.sel = null;
        this.hint = "";
        this.renderSelection();
        this.renderStatus();
        return true;
      case "Backspace":
      case "Delete":
        if (!this.sel) return false;
        this.removeSelected();
        return true;
      case "ArrowLeft":
      case "ArrowRight": {
        // Arrows move the way they point: in a right-to-left text, left is forward.
        const rtl = getComputedStyle(this.textBox).direction === "rtl";
        return this.moveSelection((key === "ArrowRight") !== rtl ? 1 : -1, shift);
      }
      default:
        return false;
    }
  }

  moveSelection(step, extend) {
    const n = this.words.length;
    if (!n) return false;
    if (!this.sel) {
      const i = step > 0 ? 0 : n - 1;
      this.sel = { a: i, b: i, fromClick: false };
    } else {
      const b = Math.min(n - 1, Math.max(0, this.sel.b + step));
      this.sel = extend ? { a: this.sel.a, b, fromClick: false } : { a: b, b, fromClick: false };
    }
    this.renderSelection();
    const w = this.wordEls[this.sel.b];
    if (w && w.scrollIntoView) w.scrollIntoView({ block: "nearest" });
    return true;
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let ctl = parentElement.__fewlabelAnnotator;
  if (!ctl || ctl.destroyed) {
    ctl = new SpanAnnotator(parentElement);
    parentElement.__fewlabelAnnotator = ctl;
  }
  ctl.send = setTriggerValue;
  ctl.update(data || {});
  return () => ctl.destroy();
}
