"""Train: retrain in a background worker, watch progress, compare versions, pick the strategy,
build an aligned base from the project's weak sources, and manage and score those sources."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, services
from app.prefill_view import show_prefill
from app.services import (
    ACTIVE,
    DEFAULT_STRATEGY,
    STRATEGIES,
    Clock,
    FewlabelError,
    add_patterns,
    defaults,
    enqueue,
    evaluate_sources,
    get_project,
    learning_curve,
    list_patterns,
    local_worker,
    project_clock,
    project_records,
    recent_jobs,
    remove_patterns,
    request_cancel,
    set_strategy,
    start,
    version_table,
)
from app.ui import md_escape, require_project, show_flashes
from app.versions_view import show_versions

WEAK_REPORT = "_fl_weak_report"  # (project id, evaluate_sources' report) until a change

auth.require_page("train")  # the navigation hides it from other roles
project = require_project()
st.title("Train")
show_flashes()


def _start(kind: str, params: dict) -> None:
    """Enqueue a job, then start its worker process (or leave it to `fewlabel worker`
    processes when local workers are off); the page keeps working meanwhile."""
    params = {**params, "project_id": project.id}
    if local_worker():
        # said with the job, not after it: an app killed before its worker started leaves a
        # job that core.jobs.queue.reap fails after START_TIMEOUT, not one queued forever
        # (scripts/app_kill_probe.py)
        params["spawned"] = True
    try:
        with services.session() as s:
            job_id = enqueue(s, kind, get_project(s, project.id), params).id
        start(services.db_url(), job_id)
    except FewlabelError as exc:
        st.session_state["_fl_train_error"] = str(exc)


def _cancel(job_id: int) -> None:
    with services.session() as s:
        request_cancel(s, job_id)


def _newest_job():
    with services.session() as s:
        jobs = recent_jobs(s, get_project(s, project.id), limit=1)
    return jobs[0] if jobs else None


def _show(job) -> None:
    """The newest job: progress and Cancel while it runs, else how it ended."""
    if job is None:
        st.caption("No training yet. Label a few texts, then press Retrain.")
        return
    label = f"Job {job.id} ({job.kind}): {job.status}"
    if job.status in ACTIVE:
        st.progress(job.progress, text=f"{label} · {md_escape(job.message)}")
        st.button(
            "Cancel",
            key=f"cancel_{job.id}",
            on_click=_cancel,
            args=(job.id,),
            icon=":material/stop_circle:",
        )
    elif job.status == "done":
        result = job.result or {}
        parts = []
        if "version" in result:
            parts.append(f"version {result['version']}")
        if "scored" in result:
            parts.append(f"{result['scored']} unlabeled texts scored")
        if "checkpoint" in result:
            parts.append(f"aligned base built from {result['texts']} texts and selected")
        if result.get("weak_sources"):
            parts.append("weak sources: " + ", ".join(result["weak_sources"]))
        st.success(" · ".join([label, *parts]))
        for note in result.get("notes", []):
            st.caption(md_escape(note))
    elif job.status == "failed":
        st.error(f"{label}: {md_escape(job.error)}")
    else:
        st.info(label)


@st.fragment(run_every=2.0)
def _live_status(job_id: int) -> None:
    """Refreshed every two seconds, and only while a job runs: when it ends, the whole page
    reruns (new version in the table and chart) and renders without this timer."""
    job = _newest_job()
    if job is None or job.id != job_id or job.status not in ACTIVE:
        st.rerun()
    _show(job)


def job_status() -> None:
    job = _newest_job()
    if job is not None and job.status in ACTIVE:
        _live_status(job.id)
    else:
        _show(job)


def _add_patterns(upload) -> None:
    """Store an uploaded patterns file; a bad one is refused whole, with its file:line."""
    try:
        with services.session() as s:
            n = add_patterns(s, get_project(s, project.id), upload.name, upload.getvalue())
    except FewlabelError as exc:
        st.error(f"Nothing was stored. {md_escape(exc)}")
    else:
        st.session_state.pop(WEAK_REPORT, None)
        st.success(f"Stored {n} patterns from {md_escape(upload.name)}.")


def _remove_patterns(name: str) -> None:
    with services.session() as s:
        remove_patterns(s, get_project(s, project.id), name)
    st.session_state.pop(WEAK_REPORT, None)


def _evaluate() -> None:
    try:
        with services.session() as s:
            p = get_project(s, project.id)
            texts = [text for text, _ in project_records(s, p)]
            report = evaluate_sources(s, p, texts=texts)
    except FewlabelError as exc:  # e.g. a stored pattern whose label was since renamed
        report = {"error": str(exc)}
    st.session_state[WEAK_REPORT] = (project.id, report)


def weak_sources() -> None:
    """The patterns files stored with the project, and every source scored on demand."""
    st.caption(
        "Aligned pretraining learns from free labels: your labeled spans as a dictionary "
        "over all texts, the current model's confident spans, "
        + ("the built-in rule, " if project.task != "custom" else "")
        + "and terms and patterns you give per label: a JSONL file, one "
        '`{"label": ..., "pattern": "aspirin"}` (a phrase), a token list as in spaCy, or '
        '`{"label": ..., "regex": ...}` a line. A file of the same name replaces the stored one.'
    )
    with st.form("weak_patterns", clear_on_submit=True, border=False):
        upload = st.file_uploader("Patterns file", type=["jsonl"], key="weak_patterns_file")
        submitted = st.form_submit_button("Add patterns", key="weak_patterns_submit")
    if submitted:
        if upload is None:
            st.warning("Choose a patterns file.")
        else:
            _add_patterns(upload)
    with services.session() as s:
        files = list_patterns(s, get_project(s, project.id))
    for i, f in enumerate(files):
        name_col, button_col = st.columns([4, 1], vertical_alignment="center")
        name_col.text(f"{f['name']} · {f['patterns']} patterns · added {f['added']:%Y-%m-%d}")
        button_col.button(
            "Remove", key=f"weak_remove_{i}", on_click=_remove_patterns, args=(f["name"],)
        )
    st.button(
        "Evaluate the weak sources",
        key="weak_evaluate",
        on_click=_evaluate,
        icon=":material/fact_check:",
        help="Precision, recall and coverage of each source on the labeled texts: the "
        "dictionary and patterns are built without the text they are scored on, the model "
        "is scored on texts labeled after it was trained. Runs over every labeled text.",
    )
    stored = st.session_state.get(WEAK_REPORT)
    if stored and stored[0] == project.id:
        report = stored[1]
        if "error" in report:
            st.error(md_escape(report["error"]))
            return
        if report["sources"]:
            scores = pd.DataFrame.from_dict(report["sources"], orient="index")
            percent = {"p": "P", "r": "R", "f1": "F1", "coverage": "coverage"}
            scores[list(percent)] *= 100
            st.dataframe(
                scores.rename(columns=percent).rename_axis("source").reset_index(),
                hide_index=True,
                column_config={
                    col: st.column_config.NumberColumn(format="%.1f") for col in percent.values()
                },
            )
        st.caption(
            f"On {report['labeled']} labeled texts; P, R, F1 and coverage (the share of texts "
            "given a span) in percent."
        )
        for note in report["notes"]:
            st.caption(md_escape(note))


CLOCK_HELP = (
    "Each save and skip (manual) and each decision on a suggestion (teach) records the "
    "seconds from the text or suggestion appearing to the answer, counting only time the "
    "browser tab was visible, and at most {cap:g} s an answer: time beyond that is idle, "
    "not work. Hours are the sum of those seconds; the rate counts only answers that "
    "recorded their time (imported ones did not)."
)


def pace_table(clock: Clock) -> pd.DataFrame:
    """Per annotator and mode: answers, hours (to 3 decimals, about 4 s) and answers per hour
    (texts in manual mode, decisions in teach mode; to one decimal)."""
    return pd.DataFrame(
        [
            {
                "Annotator": r.annotator,
                "Mode": r.mode,
                "Answers": r.answers,
                "Timed": r.timed,
                "Hours": f"{r.hours:.3f}",
                "Per hour": "" if r.per_hour is None else f"{r.per_hour:.1f}",
            }
            for r in clock.pace
        ]
    )


def hours_chart(curve: list[dict]) -> alt.Chart:
    """F1 against the annotator hours each version's training data cost."""
    data = pd.DataFrame(curve)
    tooltip = [
        alt.Tooltip("version:Q", title="Version"),
        alt.Tooltip("hours:Q", title="Annotator hours", format=".2f"),
        alt.Tooltip("labels:Q", title="Labels"),
        alt.Tooltip("f1:Q", title="F1 (%)", format=".1f"),
    ]
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=80, filled=True))
        .encode(
            x=alt.X("hours:Q", title="Annotator hours", scale=alt.Scale(zero=True)),
            y=alt.Y("f1:Q", title="F1 (%)", scale=alt.Scale(domain=[0, 100])),
            tooltip=tooltip,
        )
        .properties(height=260)
    )


def annotator_time(clock: Clock) -> None:
    """The annotator's clock: each annotator's pace per mode, F1 against annotator hours."""
    st.subheader("Annotator time", help=CLOCK_HELP.format(cap=defaults.IDLE_CAP_S))
    if not clock.pace:
        st.caption("No answers yet.")
        return
    st.table(pace_table(clock).set_index("Annotator"))
    st.caption(
        "Per hour: texts saved or skipped (manual) or suggestions answered (teach) per hour "
        f"of recorded time, each answer counted at most {defaults.IDLE_CAP_S:g} s."
    )
    if clock.curve and any(r.timed for r in clock.pace):  # no time recorded: no hours to plot
        st.caption(
            "F1 against annotator hours: each version at the hours spent on the answers "
            "given before its training began"
        )
        st.altair_chart(hours_chart(clock.curve), width="stretch")


with services.session() as s:
    p = get_project(s, project.id)
    base_default = p.base_model or "default"
    strategy = p.strategy

left, right = st.columns([2, 1])
with left.form("retrain"):
    st.subheader("Retrain")
    st.caption(f"{project.done} labeled texts. Training runs in its own process; keep annotating.")
    base = st.text_input(
        "Base model",
        base_default,
        help="default = the shipped MiniLM; or a Hugging Face id, a local path, "
        "or an aligned checkpoint from `fewlabel pretrain`",
    )
    # the schedule of the project's default evidence; left as shown, the model's own
    # evidence picks it (core.defaults.schedule), so unticking the evidence keeps it right
    task = services.tasks()[project.task]
    usual = task.evidence_for()  # the evidence the task gives unless told (core.tasks)
    shown = defaults.schedule(usual.name if usual else None)["epochs"]
    epochs = st.number_input("Max epochs", 1, 100, shown, help=defaults.EPOCHS_HELP)
    warm = st.checkbox("Start from the current version", help="faster; same label set only")
    train_args = {} if int(epochs) == shown else {"epochs": int(epochs)}
    if task.evidence_text:
        label, why = task.evidence_text
        train_args["evidence"] = st.checkbox(
            label,
            value=usual is not None,
            key="train_evidence",
            help=why,
        )
    cv = st.checkbox(
        "Cross-validate F1 while labels are few",
        value=True,
        key="train_cv",
        help="Until the dev slice holds 50 texts (about 500 labels), its F1 is noise: train one "
        "more model per fold (5) and report F1 as mean ± sd over folds, every labeled text "
        "held out once. Five more finetunes: about a minute more at 50 labels, 3 at 200.",
    )
    if st.form_submit_button("Retrain", type="primary", icon=":material/model_training:"):
        params = {"base": base.strip() or "default", "warm_start": warm, "cv": cv}
        _start("train", {**params, "train_args": train_args})
        st.rerun()

with right:
    st.subheader("Queue order")
    names = list(STRATEGIES)
    chosen = st.selectbox(
        "Strategy",
        names,
        index=names.index(strategy) if strategy in names else 0,
        format_func=lambda n: n.replace("_", " "),
        key="train_strategy",
    )
    st.caption(STRATEGIES[chosen].help + (" (default)" if chosen == DEFAULT_STRATEGY else ""))
    if chosen != strategy:
        with services.session() as s:
            set_strategy(s, get_project(s, project.id), chosen)
        st.toast(f"Strategy set to {chosen}; it applies from the next scoring.")
    if st.button("Rescore the queue now", icon=":material/sort:"):
        _start("score", {})
        st.rerun()
    show_prefill(project.id)

with st.expander("Aligned pretraining: a better base from this project's own texts"):
    st.caption(
        "Continues pretraining the base on this project's texts"
        + (" (and the sample corpus)" if project.task != "custom" else "")
        + " with masked-LM plus free weak labels (see Weak sources below), through the same "
        "tagging head. The checkpoint becomes the base of the next Retrain. "
        + (
            "With your own labels, build it after about 50 labeled texts and rebuild as they "
            "grow: the dictionary and the model's confident spans grow with them."
            if project.task == "custom"
            else "The built-in rule labels every text; your labels and patterns add to it."
        )
    )
    minutes = st.number_input(
        "Minutes", 1.0, 240.0, defaults.PRETRAIN_MINUTES, 1.0, format="%g", key="pretrain_minutes"
    )
    if st.button("Build an aligned base", icon=":material/auto_awesome:"):
        _start("pretrain", {"max_minutes": float(minutes), "base": base_default})
        st.rerun()


with st.expander("Weak sources: what the aligned base learns from"):
    weak_sources()

if error := st.session_state.pop("_fl_train_error", None):
    st.error(md_escape(error))
job_status()

st.subheader("Versions")
with services.session() as s:
    p = get_project(s, project.id)
    rows, points = version_table(s, p), learning_curve(s, p)
    clock = project_clock(s, p)
show_versions(rows, points)
annotator_time(clock)
