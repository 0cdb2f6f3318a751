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

// common.js (prepended by teach_card.py) gives el, cleanLabels, the clock, the key guards and
// the Controller with the busy/seq handshake.

const KEYS = new Map([
  ["a", "accept"],
  ["Enter", "accept"],
  ["x", "reject"],
  [" ", "ignore"],
  ["s", "ignore"],
  ["u", "undo"],
]);

class TeachCard extends Controller {
  constructor(host) {
    super(host, "__fewlabelTeach", "ft");
    this.build();
    this.listenKeysAndVisibility();
  }

  build() {
    const root = this.makeRoot("Teach: answer the suggested span", "fewlabel-teach");
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
    this.mountRoot(root);
  }

  // ------------------------------------------------------------------ data in

  update(data) {
    this.takeSeq(data);
    this.labels = cleanLabels(data.labels);
    this.suggestion = {
      doc: data.doc,
      start: data.start,
      end: data.end,
      label: String(data.label ?? ""),
    };
    const version = String(data.version ?? "");
    const grab = this.takeFocusToken(data);
    if (version !== this.version) {
      this.version = version;
      this.clock.start();
      this.hint = "";
      this.focusIfIdle(grab);
    } else if (grab) {
      this.focusIfIdle(true);
    }
    this.root.dataset.key = `${data.doc}:${data.start}:${data.end}:${this.suggestion.label}`;
    this.root.dataset.version = version;
    this.render(data);
  }

  // ------------------------------------------------------------------ rendering

  colorOf(name) {
    return this.labels.find((l) => l.name === name) || FALLBACK_COLOR;
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
      const button = this.button(`ft-btn ${extra || ""}`.trim());
      button.dataset.action = action;
      button.append(el("span", "", title), this.kbd(key));
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
      const button = this.button("ft-label");
      button.dataset.label = label.name;
      button.style.setProperty("--ft-bg", label.bg);
      button.style.setProperty("--ft-fg", label.fg);
      button.title = `Accept the span as ${label.name} (key ${key})`;
      button.append(this.kbd(key), el("span", "", label.name));
      button.addEventListener("click", () => this.act("accept", label.name));
      this.legend.append(button);
    });
  }

  renderStatus() {
    this.status.replaceChildren();
    if (this.hint) this.status.append(el("span", "ft-hint", this.hint));
  }

  setBusy(busy) {
    super.setBusy(busy);
    this.root.dataset.busy = busy ? "1" : "";
  }

  busyTimedOut() {
    this.setHint("No answer from the server: try again.");
  }

  // ------------------------------------------------------------------ answers

  act(action, asLabel) {
    if (this.busy) {
      this.setHint("Wait for the next suggestion: that key was not applied.");
      return;
    }
    const s = this.suggestion;
    if (!s || s.doc === undefined || s.doc === null) return;
    this.hint = "";
    this.sendEvent({
      action,
      doc: s.doc,
      start: s.start,
      end: s.end,
      label: s.label,
      as: asLabel || null,
      ms: this.clock.elapsedMs(),
    });
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
