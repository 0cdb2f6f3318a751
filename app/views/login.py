"""Log in: the only page a browser sees on a server with accounts until it logs in."""

from __future__ import annotations

import streamlit as st

from app import auth, state
from app.ui import show_flashes

st.title("Log in")
st.caption("This server has accounts: log in with the name and password an admin gave you.")
show_flashes()
with st.form("login"):
    st.text_input("Name", key=state.LOGIN_NAME_KEY, max_chars=100, autocomplete="username")
    st.text_input(
        "Password",
        key=state.LOGIN_PASSWORD_KEY,
        type="password",
        max_chars=1024,
        autocomplete="current-password",
    )
    st.form_submit_button("Log in", type="primary", on_click=auth.log_in)
