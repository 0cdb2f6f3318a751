"""The Train page's versions: the table and the F1 learning curve, each figure beside the
number of held-out texts and spans it was measured on (core.store.versions builds the rows)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

EXPLAIN = (
    "F1 is exact-match span F1 (micro, all labels together) in percent. While the labels are "
    "too few for a dev slice to measure it, a retrain also trains one model per fold and "
    "reports cross-validated F1, mean ± sd over folds, every labeled text held out once; "
    "after that, F1 on the dev slice the version did not train on."
)


def f1_chart(points: list[dict]) -> alt.LayerChart:
    """F1 against labeled texts: a line with a point per version (so one version shows),
    ± sd bars where cross-validated, and each point's held-out texts and spans above it."""
    data = pd.DataFrame(points)
    data["low"] = (data["f1"] - data["sd"]).clip(lower=0)
    data["high"] = (data["f1"] + data["sd"]).clip(upper=100)
    data["held_out"] = [
        f"{t} texts, {s} spans" for t, s in zip(data["texts"], data["spans"], strict=True)
    ]
    x = alt.X("labels:Q", title="Labeled texts", scale=alt.Scale(zero=True))
    scale = alt.Scale(domain=[0, 100])
    y = alt.Y("f1:Q", title="F1 (%)", scale=scale)
    base = alt.Chart(data).encode(x=x)
    tooltip = [
        alt.Tooltip("version:Q", title="Version"),
        alt.Tooltip("labels:Q", title="Labels"),
        alt.Tooltip("f1:Q", title="F1 (%)", format=".1f"),
        alt.Tooltip("sd:Q", title="± sd (%)", format=".1f"),
        alt.Tooltip("by:N", title="Measured by"),
        alt.Tooltip("texts:Q", title="Held-out texts"),
        alt.Tooltip("spans:Q", title="Held-out spans"),
    ]
    line = base.mark_line(point=alt.OverlayMarkDef(size=80, filled=True)).encode(
        y=y, tooltip=tooltip
    )
    # the same title and scale on every layer, or Vega-Lite joins the fields' names
    bars = base.mark_rule().encode(y=alt.Y("low:Q", title="F1 (%)", scale=scale), y2="high:Q")
    notes = base.mark_text(dy=-14, fontSize=11).encode(y=y, text="held_out:N")
    return alt.layer(bars, line, notes).properties(height=260)


def show_versions(rows: list[dict], points: list[dict]) -> None:
    """The versions table, then the learning curve once a version has a measured F1."""
    if not rows:
        st.caption("No model version yet.")
        return
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "Current": st.column_config.CheckboxColumn(),
            "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
    st.caption(EXPLAIN)
    if points:
        st.caption("F1 against the number of labeled texts")
        st.altair_chart(f1_chart(points), width="stretch")
