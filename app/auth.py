"""Who is using the app, and what they may do.

With no account in the database (one person on their own machine, 127.0.0.1) nobody logs in:
the typed name labels and every page is open, as before accounts existed. Once an account
exists every browser logs in, the annotator is the logged-in account, and the pages and
actions are those its role allows (core.labeling.users). Every action checks again against the
database when it runs, so neither a crafted request nor an account disabled meanwhile gets
through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session

from app import presence, services, state
from core.errors import AccountDisabledError, AuthenticationError, NotFoundError
from core.labeling import users
from core.labeling.claims import release
from core.labeling.projects import get_project, list_projects
from core.labeling.users import Account


def login_required() -> bool:
    """Whether this server has accounts (then nobody acts without logging in)."""
    with services.session() as s:
        return users.any_accounts(s)


def current() -> Account | None:
    """The account logged in to this browser session, read afresh from the database on every
    run: a disabled or deleted account is logged out here."""
    name = state.logged_in()
    if not name:
        return None
    with services.session() as s:
        try:
            account = users.get_account(s, name)
        except NotFoundError:
            account = None
    if account is None or account.disabled:
        state.log_out()
        # said on the login page this run shows next, so nobody wonders where they went
        why = users.DISABLED_MESSAGE if account is not None else "this account no longer exists"
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
            f"Your role ({account.role}) may not {users.PERMISSIONS[permission]}. "
            "An admin can change it with `fewlabel user`."
        )
        st.stop()
    return account


@contextmanager
def session_as(name: str, permission: str) -> Iterator[Session]:
    """A session for one action by `name`. With accounts, `name` must be this browser's
    logged-in account and still allowed `permission` now (AuthenticationError or
    PermissionDeniedError, raised before anything is written)."""
    with services.session() as s:
        if users.any_accounts(s):
            if name != state.logged_in():
                raise AuthenticationError("you are not logged in as the one who acts here")
            users.acting(s, name, permission)
        yield s


def log_in() -> None:
    """Callback of the login form: the name and password typed, checked against the accounts.
    The password is dropped from the session at once, whatever the outcome."""
    name = str(st.session_state.get(state.LOGIN_NAME_KEY) or "")
    password = str(st.session_state.get(state.LOGIN_PASSWORD_KEY) or "")
    st.session_state[state.LOGIN_PASSWORD_KEY] = ""
    try:
        with services.session() as s:
            account = users.authenticate(s, name, password)
    except AccountDisabledError as exc:  # the right password: not a guess to count
        state.flash("error", f"Not logged in: {exc}.")
        return
    except AuthenticationError as exc:
        with services.session() as s:  # its own transaction: the refusal rolled back
            users.note_failed_login(s, name)
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
            with services.session() as s:
                for summary in list_projects(s):
                    release(s, get_project(s, summary.id), name)
    state.log_out()
