"""A browser session's access, checked against the accounts in one transaction each: who is
logged in, logging in (a refusal counted in its own transaction), and the check that runs
before every action. The app reaches these through app/services.py; the rules themselves
(roles, permissions, password hashes, locks) are core.labeling.users.

Without any account (one person on their own machine) nobody logs in and every action is
allowed; once an account exists, every action is by the logged-in account and allowed by its
role at the moment it runs, so neither a crafted request nor an account disabled meanwhile
gets through.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.errors import AccountDisabledError, AuthenticationError, NotFoundError
from core.labeling import users
from core.labeling.claims import release_everywhere
from core.labeling.users import Account
from core.store.db import session_scope


def login_required(url: str) -> bool:
    """Whether the database holds any account (then nobody acts without logging in)."""
    with session_scope(url) as session:
        return users.any_accounts(session)


def find_account(url: str, name: str) -> Account | None:
    """The account `name` as it is now, None when it no longer exists."""
    with session_scope(url) as session:
        try:
            return users.get_account(session, name)
        except NotFoundError:
            return None


def log_in(url: str, name: str, password: str) -> Account:
    """The account whose name and password these are. A wrong password is counted towards the
    account's lock in a transaction of its own (the refusal's was rolled back), then raised
    (AuthenticationError); a disabled account's right password is not a guess to count
    (AccountDisabledError)."""
    try:
        with session_scope(url) as session:
            return users.authenticate(session, name, password)
    except AccountDisabledError:
        raise
    except AuthenticationError:
        with session_scope(url) as session:
            users.note_failed_login(session, name)
        raise


def check_actor(session: Session, name: str, logged_in: str | None, permission: str) -> None:
    """Refuse, before anything is written, an action by `name` that the accounts do not allow:
    with accounts, `name` must be the browser's logged-in account (`logged_in`) and still be
    allowed `permission` (AuthenticationError, PermissionDeniedError). Without, anything."""
    if not users.any_accounts(session):
        return
    if name != logged_in:
        raise AuthenticationError("you are not logged in as the one who acts here")
    users.acting(session, name, permission)


def release_held(url: str, name: str) -> int:
    """Give back the texts `name` holds in every project (they logged out or renamed
    themselves), so they return to the queue now; how many."""
    with session_scope(url) as session:
        return release_everywhere(session, name)
