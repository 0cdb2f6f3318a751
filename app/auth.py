"""Who is using the app, and what they may do.

With no account in the database (one person on their own machine, 127.0.0.1) nobody logs in:
the typed name labels and every page is open, as before accounts existed. Once an account
exists every browser logs in, the annotator is the logged-in account, and the pages and
actions are those its role allows (core.labeling.users). Every action checks again against
the database when it runs, so neither a crafted request nor an account disabled meanwhile gets
through. The database work is core's (core.labeling.access, through app/services.py); this
module keeps the browser's side: its session state, messages and pages.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import streamlit as st

from app import presence, services, state
from app.services import (
    DISABLED_MESSAGE,
    PERMISSIONS,
    Account,
    AccountDisabledError,
    AuthenticationError,
)

if TYPE_CHECKING:
    from app.services import Session


def login_required() -> bool:
    """Whether this server has accounts (then nobody acts without logging in)."""
    return services.login_required()


def current() -> Account | None:
    """The account logged in to this browser session, read afresh from the database on every
    run: a disabled or deleted account is logged out here."""
    name = state.logged_in()
    if not name:
        return None
    account = services.find_account(name)
    if account is None or account.disabled:
        state.log_out()
        # said on the login page this run shows next, so nobody wonders where they went
        why = DISABLED_MESSAGE if account is not None else "this account no longer exists"
        state.flash("warning", f"You were logged out: {why}.")
        return None
    return account


def allows(permission: str) -> bool:
    """Whether this browser session may do `permission` (always, with no accounts)."""
    if not login_required():
        return True
    account = current()
    return account is not None and account.can(permission)


def require_page(permission: str) -> Account | None:
    """The logged-in account if its role allows this page, else a message and the end of the
    run (the navigation hides such pages; this guards a crafted request). None: no accounts."""
    if not login_required():
        return None
    account = current()
    if account is None:
        st.warning("Please log in.")
        st.stop()
    if not account.can(permission):
        st.error(
            f"Your role ({account.role}) may not {PERMISSIONS[permission]}. "
            "An admin can change it with `fewlabel user`."
        )
        st.stop()
    return account


def session_as(name: str, permission: str) -> AbstractContextManager[Session]:
    """A session for one action by `name`. With accounts, `name` must be this browser's
    logged-in account and still allowed `permission` now (AuthenticationError or
    PermissionDeniedError, raised before anything is written)."""
    return services.acting_session(name, permission, state.logged_in())


def log_in() -> None:
    """Callback of the login form: the name and password typed, checked against the accounts.
    The password is dropped from the session at once, whatever the outcome."""
    name = str(st.session_state.get(state.LOGIN_NAME_KEY) or "")
    password = str(st.session_state.get(state.LOGIN_PASSWORD_KEY) or "")
    st.session_state[state.LOGIN_PASSWORD_KEY] = ""
    try:
        account = services.log_in(name, password)  # a wrong password counts towards a lock
    except (AccountDisabledError, AuthenticationError) as exc:
        state.flash("error", f"Not logged in: {exc}.")
        return
    state.log_in(account.name)


def log_out() -> None:
    """Callback of the sidebar's Log out: the texts this account holds go back to the queue
    (unless it is still labeling in another browser), and this session forgets everything."""
    name = state.logged_in()
    if name:
        presence.leave(name)
        if presence.active_elsewhere(name) is None:
            services.release_held(name)
    state.log_out()
