"""Accounts and roles for a shared server: add, authenticate, list, change a password, disable,
and what each role may do (tests/test_layers.py keeps Streamlit out of it).

Passwords are kept only as Argon2id hashes (argon2-cffi, its RFC 9106 low-memory profile) and
never printed. An account's name is the annotator name it labels under. Roles are cumulative:
a reviewer may also annotate, an admin may do everything. With no account in the database a
server on 127.0.0.1 needs no login (one person on their own machine); once one exists, every
browser logs in.

Every function takes the session first; the caller owns the transaction.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import (
    AccountDisabledError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from core.labeling.claims import release_everywhere
from core.store.schema import User, utcnow

# What each permission lets an account do.
PERMISSIONS = {
    "annotate": "label texts on the Annotate page",
    "history": "undo one's own saves and skips, see one's own progress",
    "review": "correct texts on the Review page (final versions)",
    "export": "download labels",
    "projects": "create, rename and delete projects and labels",
    "import": "import files into a project",
    "train": "retrain models, build aligned bases, choose the queue's strategy",
    "users": "add, change and disable accounts",
}
_ANNOTATOR = frozenset({"annotate", "history"})
_REVIEWER = _ANNOTATOR | {"review", "export"}
ROLES: dict[str, frozenset[str]] = {
    "annotator": _ANNOTATOR,
    "reviewer": _REVIEWER,
    "admin": frozenset(PERMISSIONS),
}
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 100
# Password guessing: after LOCK_AFTER wrong passwords in a row an account is locked for
# LOCK_SECONDS, doubled with each further wrong one, at most LOCK_MAX_SECONDS; the right
# password ends the count, and an admin's `user passwd` or `user enable` ends a lock at once.
# Kept in the database, so every app process on the server and every restart sees it.
LOCK_AFTER = 5
LOCK_SECONDS = 30
LOCK_MAX_SECONDS = 15 * 60

# What a disabled account is told: at a login with its right password, and in a browser that
# was logged in when an admin disabled it.
DISABLED_MESSAGE = "this account was disabled by an admin"

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when a name is unknown, so a wrong name costs as long as a wrong
    password (made on first use: hashing costs tens of milliseconds)."""
    return _hasher.hash("fewlabel: no such account")


@dataclass(frozen=True)
class Account:
    """An account as the app and the CLI see it (never its hash)."""

    name: str
    role: str
    disabled: bool = False
    created_at: datetime | None = None
    password_changed_at: datetime | None = None
    locked_until: datetime | None = None

    def can(self, permission: str) -> bool:
        return can(self.role, permission)


def _account(user: User) -> Account:
    return Account(
        name=user.name,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        password_changed_at=user.password_changed_at,
        locked_until=user.locked_until if _locked_for(user) else None,
    )


def _locked_for(user: User) -> int:
    """Seconds the account stays locked (0: not locked)."""
    if user.locked_until is None:
        return 0
    return max(0, math.ceil((user.locked_until - utcnow()).total_seconds()))


def can(role: str, permission: str) -> bool:
    """Whether `role` has `permission` (an unknown permission is a programming error)."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return permission in ROLES.get(role, frozenset())


def require(account: Account, permission: str) -> Account:
    """The account, if it is active and its role has `permission`; else PermissionDeniedError."""
    if account.disabled:
        raise PermissionDeniedError(f"the account {account.name!r} is disabled")
    if not can(account.role, permission):
        raise PermissionDeniedError(
            f"{account.name!r} ({account.role}) may not {PERMISSIONS[permission]}"
        )
    return account


def _check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name:
        raise ValidationError("an account name is required")
    if len(name) > MAX_NAME:
        raise ValidationError(f"account names are at most {MAX_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationError("an account name may not hold control characters")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"a password has at most {MAX_PASSWORD} characters")
    return password


def _find(session: Session, name: str) -> User | None:
    """The account named `name`, whatever its case ("Alice" and "alice" are one account)."""
    key = unicodedata.normalize("NFC", (name or "").strip()).lower()
    return session.scalar(select(User).where(func.lower(User.name) == key))


def _get(session: Session, name: str) -> User:
    user = _find(session, name)
    if user is None:
        raise NotFoundError(f"no account named {name!r}")
    return user


def any_accounts(session: Session) -> bool:
    """Whether an account exists, disabled ones included: then every browser logs in."""
    return session.scalar(select(User.id).limit(1)) is not None


def count_admins(session: Session) -> int:
    """Active admin accounts (what `serve --host` needs at least one of)."""
    return session.scalar(
        select(func.count()).where(User.role == "admin", User.disabled.is_(False))
    )


def add_user(session: Session, name: str, role: str, password: str) -> Account:
    """Create an account; ConflictError when the name (in any case) is taken."""
    name, role = _check_name(name), _check_role(role)
    _check_password(password)
    if _find(session, name) is not None:
        raise ConflictError(f"an account named {name!r} already exists")
    now = utcnow()
    user = User(
        name=name,
        role=role,
        password_hash=_hasher.hash(password),
        disabled=False,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return _account(user)


def authenticate(session: Session, name: str, password: str) -> Account:
    """The account whose name and password these are, if it is active and not locked; else
    AuthenticationError, which says the same for an unknown name and a wrong password (a
    locked account says so, and the right password of a disabled account says it is
    disabled: AccountDisabledError).

    A refusal writes nothing, since the caller's transaction rolls back on it: the caller
    records it with `note_failed_login` in a transaction of its own."""
    refused = AuthenticationError("wrong name or password")
    user = _find(session, name)
    if user is not None and (wait := _locked_for(user)):
        # not even checked: a guess during the lock learns nothing
        raise AuthenticationError(
            f"too many wrong passwords for this account; try again in {wait} s"
        )
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        raise refused from None
    if user is None:
        raise refused
    if user.disabled:  # only the right password learns this
        raise AccountDisabledError(DISABLED_MESSAGE)
    if _hasher.check_needs_rehash(user.password_hash):  # the library's cost went up
        user.password_hash = _hasher.hash(password)
    _unlock(user)
    session.flush()
    return _account(user)


def note_failed_login(session: Session, name: str) -> int:
    """Count one wrong password for the account `name` (nothing for an unknown name, or
    during a lock) and lock it once the count reaches LOCK_AFTER; returns the seconds it is
    now locked for."""
    user = _find(session, name)
    if user is None:
        return 0
    if wait := _locked_for(user):
        return wait  # refused for the lock, not for a guess: the lock stays as it is
    user.failed_logins = User.failed_logins + 1  # in SQL: two app processes both count
    session.flush()
    session.refresh(user, ["failed_logins"])
    over = user.failed_logins - LOCK_AFTER
    if over >= 0:
        seconds = min(LOCK_MAX_SECONDS, LOCK_SECONDS * 2 ** min(over, 20))
        user.locked_until = utcnow() + timedelta(seconds=seconds)
        session.flush()
    return _locked_for(user)


def _unlock(user: User) -> None:
    user.failed_logins, user.locked_until = 0, None


def get_account(session: Session, name: str) -> Account:
    return _account(_get(session, name))


def acting(session: Session, name: str, permission: str) -> Account:
    """The account `name` acting now, checked against the database at the moment it acts:
    a disabled account or a changed role takes effect on its next action, not its next login.
    """
    user = _find(session, name)
    if user is None or user.disabled:
        raise AuthenticationError("you are not logged in (or the account was disabled)")
    return require(_account(user), permission)


def list_users(session: Session) -> list[Account]:
    return [_account(u) for u in session.scalars(select(User).order_by(User.name))]


def set_password(session: Session, name: str, password: str) -> Account:
    user = _get(session, name)
    user.password_hash = _hasher.hash(_check_password(password))
    user.password_changed_at = utcnow()
    _unlock(user)
    session.flush()
    return _account(user)


def set_role(session: Session, name: str, role: str) -> Account:
    """Give an account another role (`fewlabel user role`); a logged-in browser gets it on its
    next action (acting reads the account afresh). The last active admin stays an admin."""
    user = _get(session, name)
    role = _check_role(role)
    if user.role == "admin" and role != "admin":
        _keep_an_admin(session, user)
    user.role = role
    session.flush()
    return _account(user)


def disable_user(session: Session, name: str) -> Account:
    """Disable an account: it can no longer log in, a logged-in browser is signed out on its
    next action, and the texts it holds go back to the queue now (in the same transaction),
    not when their lease lapses. The last active admin cannot be disabled."""
    user = _get(session, name)
    if not user.disabled and user.role == "admin":
        _keep_an_admin(session, user)
    user.disabled = True
    release_everywhere(session, user.name)
    session.flush()
    return _account(user)


def enable_user(session: Session, name: str) -> Account:
    """Let a disabled account log in again; also ends a lockout after wrong passwords."""
    user = _get(session, name)
    user.disabled = False
    _unlock(user)
    session.flush()
    return _account(user)


def _keep_an_admin(session: Session, user: User) -> None:
    if not user.disabled and count_admins(session) <= 1:
        raise ConflictError(f"{user.name!r} is the last active admin; add another admin first")
