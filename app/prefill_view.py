"""The Train page's pre-fill setting and the model's influence on saved spans
(core.labeling.prefill)."""

from __future__ import annotations

import streamlit as st

from app import services
from app.services import (
    PREFILL_THRESHOLD,
    FewlabelError,
    get_project,
    model_influence,
    prefill_threshold,
    set_prefill_threshold,
)
from app.ui import md_escape

KEY = "train_prefill"


def _save(project_id: int) -> None:
    try:
        with services.session() as s:
            value = set_prefill_threshold(s, get_project(s, project_id), st.session_state[KEY])
    except FewlabelError as exc:
        st.toast(md_escape(exc))
    else:
        st.toast(f"Suggestions at {value:.0%} confidence or more now open as spans.")


def show_prefill(project_id: int) -> None:
    """The threshold input (its default named) and one line on the model's influence."""
    with services.session() as s:
        p = get_project(s, project_id)
        threshold, influence = prefill_threshold(p), model_influence(s, p)
    st.subheader("Pre-fill")
    st.number_input(
        "Pre-fill a suggestion at confidence ≥",
        min_value=0.0,
        max_value=1.0,
        value=threshold,
        step=0.05,
        format="%.2f",
        key=KEY,
        on_change=_save,
        args=(project_id,),
        help=(
            f"A model suggestion this sure or surer opens as a span that Enter saves; a less "
            f"sure one stays a dashed suggestion (click or A accepts it). Default "
            f"{PREFILL_THRESHOLD:.2f}. Lower it when annotators mostly keep the suggestions, "
            f"raise it when they remove or edit many."
        ),
    )
    st.caption(f"Default {PREFILL_THRESHOLD:.2f}. {influence.describe()}")
