"""Accounts and roles (issue 12): the service on a real SQLite file, and `fewlabel user` and
`serve --host` through the command line, in process."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.cli import main
from core.cli.users import is_loopback
from core.errors import (
    AccountDisabledError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from core.labeling import users
from core.labeling.annotations import next_document
from core.labeling.projects import get_project
from core.store.db import session_scope
from core.store.schema import Document, User, utcnow

PASSWORD = "correct horse"


def add(url: str, name: str, role: str, password: str = PASSWORD) -> users.Account:
    with session_scope(url) as s:
        return users.add_user(s, name, role, password)


def login(url: str, name: str, password: str = PASSWORD) -> users.Account:
    with session_scope(url) as s:
        return users.authenticate(s, name, password)


# ---------------------------------------------------------------- the service


def test_an_account_logs_in_with_its_password_only(db_url):
    with session_scope(db_url) as s:
        assert not users.any_accounts(s)
    add(db_url, "Ann", "annotator")
    assert login(db_url, "ann") == login(db_url, " ANN ")  # one account, whatever the case
    assert login(db_url, "ann").name == "Ann"  # the name it labels under, as it was given
    refusals = set()
    for name, password in [("Ann", "wrong password"), ("nobody", PASSWORD), ("Ann", "")]:
        with pytest.raises(AuthenticationError) as info:
            login(db_url, name, password)
        refusals.add(str(info.value))
    assert refusals == {"wrong name or password"}  # which part was wrong is not said
    with session_scope(db_url) as s:
        assert users.any_accounts(s)
        (stored,) = s.scalars(select(User)).all()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


def test_names_roles_and_passwords_are_validated(db_url):
    add(db_url, "ann", "annotator")
    with pytest.raises(ConflictError, match="already exists"):
        add(db_url, "ANN", "admin")
    for name, role, password, message in [
        ("bob", "owner", PASSWORD, "unknown role 'owner'"),
        ("  ", "admin", PASSWORD, "an account name is required"),
        ("x" * 101, "admin", PASSWORD, "at most 100 characters"),
        ("bob\x00", "admin", PASSWORD, "control characters"),
        ("bob", "admin", "short", "at least 8 characters"),
    ]:
        with pytest.raises(ValidationError, match=message):
            add(db_url, name, role, password)
    with session_scope(db_url) as s:
        assert [a.name for a in users.list_users(s)] == ["ann"]


def test_roles_grant_their_permissions_and_no_more():
    granted = {role: {p for p in users.PERMISSIONS if users.can(role, p)} for role in users.ROLES}
    assert granted["annotator"] == {"annotate", "history"}
    assert granted["reviewer"] == {"annotate", "history", "review", "export"}
    assert granted["admin"] == set(users.PERMISSIONS)
    assert {"projects", "import", "train", "users", "export"} <= granted["admin"]
    ann = users.Account("ann", "annotator")
    assert users.require(ann, "annotate") is ann
    with pytest.raises(PermissionDeniedError, match=r"'ann' \(annotator\) may not retrain"):
        users.require(ann, "train")
    with pytest.raises(PermissionDeniedError, match="disabled"):
        users.require(users.Account("root", "admin", disabled=True), "annotate")
    with pytest.raises(KeyError):  # a typo in a permission name fails loudly
        users.can("admin", "trian")


def test_acting_reads_the_account_afresh(db_url):
    add(db_url, "rita", "reviewer")
    add(db_url, "root", "admin")
    with session_scope(db_url) as s:
        assert users.acting(s, "rita", "review").role == "reviewer"
        with pytest.raises(PermissionDeniedError):
            users.acting(s, "rita", "train")
        with pytest.raises(AuthenticationError):
            users.acting(s, "nobody", "annotate")
        users.disable_user(s, "rita")
        with pytest.raises(AuthenticationError):  # disabled: the next action is refused
            users.acting(s, "rita", "review")


def attempt(url: str, name: str, password: str) -> str:
    """A login as the app makes one: a refusal is counted in a transaction of its own."""
    try:
        return login(url, name, password).name
    except AuthenticationError as exc:
        with session_scope(url) as s:
            users.note_failed_login(s, name)
        return str(exc)


def lock_left(url: str, name: str) -> float:
    with session_scope(url) as s:
        user = s.scalar(select(User).where(User.name == name))
        if user.locked_until is None:
            return 0.0
        return (user.locked_until - utcnow()).total_seconds()


def end_lock(url: str, name: str) -> None:
    """Time passes: the lock's end is moved to the past."""
    with session_scope(url) as s:
        s.scalar(select(User).where(User.name == name)).locked_until = utcnow()


@pytest.mark.both_backends
def test_wrong_passwords_lock_the_account_for_a_while(db_url):
    add(db_url, "ann", "annotator")
    for _ in range(users.LOCK_AFTER - 1):
        assert attempt(db_url, "ann", "guess") == "wrong name or password"
    assert attempt(db_url, "ann", PASSWORD) == "ann"  # the right one ends the count
    for _ in range(users.LOCK_AFTER):
        assert attempt(db_url, "ann", "guess") == "wrong name or password"
    # locked: even the right password is refused, with how long to wait
    refusal = attempt(db_url, "ann", PASSWORD)
    assert refusal.startswith("too many wrong passwords for this account; try again in ")
    assert users.LOCK_SECONDS - 5 < lock_left(db_url, "ann") <= users.LOCK_SECONDS
    with session_scope(db_url) as s:
        assert users.get_account(s, "ann").locked_until is not None
    end_lock(db_url, "ann")
    # one more wrong password after a lock doubles it; the right one, once over, logs in
    assert attempt(db_url, "ann", "guess") == "wrong name or password"
    assert 2 * users.LOCK_SECONDS - 5 < lock_left(db_url, "ann") <= 2 * users.LOCK_SECONDS
    end_lock(db_url, "ann")
    assert attempt(db_url, "ann", PASSWORD) == "ann"
    with session_scope(db_url) as s:
        user = s.scalar(select(User).where(User.name == "ann"))
        assert (user.failed_logins, user.locked_until) == (0, None)
        assert users.get_account(s, "ann").locked_until is None


def test_the_lock_is_capped_and_an_admin_ends_it(db_url):
    add(db_url, "ann", "annotator")
    for _ in range(users.LOCK_AFTER + 40):
        end_lock(db_url, "ann")
        attempt(db_url, "ann", "guess")
    assert users.LOCK_MAX_SECONDS - 5 < lock_left(db_url, "ann") <= users.LOCK_MAX_SECONDS
    with session_scope(db_url) as s:
        users.set_password(s, "ann", "a new password")  # `fewlabel user passwd`
    assert attempt(db_url, "ann", "a new password") == "ann"
    for _ in range(users.LOCK_AFTER):
        attempt(db_url, "ann", "guess")
    with session_scope(db_url) as s:
        users.enable_user(s, "ann")  # `fewlabel user enable`
    assert attempt(db_url, "ann", "a new password") == "ann"
    # an unknown name is refused as before and leaves nothing behind
    for _ in range(users.LOCK_AFTER + 1):
        assert attempt(db_url, "nobody", PASSWORD) == "wrong name or password"
    with session_scope(db_url) as s:
        assert [u.name for u in s.scalars(select(User))] == ["ann"]


def test_passwords_change_and_accounts_are_disabled_and_enabled(db_url):
    add(db_url, "ann", "annotator")
    add(db_url, "root", "admin")
    with session_scope(db_url) as s:
        before = users.get_account(s, "ann").password_changed_at
        users.set_password(s, "ann", "a new password")
        assert users.get_account(s, "ann").password_changed_at >= before
    with pytest.raises(AuthenticationError):
        login(db_url, "ann")
    assert login(db_url, "ann", "a new password").name == "ann"
    with session_scope(db_url) as s:
        users.disable_user(s, "ann")
    # the right password learns why; a wrong one learns nothing, as for any account
    with pytest.raises(AccountDisabledError, match="^this account was disabled by an admin$"):
        login(db_url, "ann", "a new password")
    with pytest.raises(AuthenticationError, match="^wrong name or password$"):
        login(db_url, "ann", "a wrong guess")
    with session_scope(db_url) as s:
        assert users.any_accounts(s)  # a disabled account still means: log in
        users.enable_user(s, "ann")
        with pytest.raises(NotFoundError, match="no account named 'nobody'"):
            users.set_password(s, "nobody", PASSWORD)
    assert login(db_url, "ann", "a new password").name == "ann"


def test_disabling_an_account_gives_its_texts_back_at_once(db_url, make_project):
    """The texts a disabled account holds, in every project, go back to the queue in the
    disabling transaction, not when their 30-minute lease lapses; others' claims stay."""
    p_ids = make_project("p", ["One text here .", "Two text here ."])
    q_ids = make_project("q", ["Three text here ."])
    add(db_url, "ann", "annotator")
    add(db_url, "bob", "annotator")
    with session_scope(db_url) as s:
        p, q = get_project(s, "p"), get_project(s, "q")
        assert next_document(s, p, "ann").document_id == p_ids[0]
        assert next_document(s, q, "ann").document_id == q_ids[0]
        assert next_document(s, p, "bob").document_id == p_ids[1]
    with session_scope(db_url) as s:
        users.disable_user(s, "ann")
        holders = dict(s.execute(select(Document.id, Document.assigned_to)).all())
        assert holders == {p_ids[0]: None, p_ids[1]: "bob", q_ids[0]: None}
    with session_scope(db_url) as s:  # another annotator is served ann's text now
        assert next_document(s, get_project(s, "q"), "bob").document_id == q_ids[0]


def test_the_last_active_admin_stays(db_url):
    add(db_url, "root", "admin")
    with session_scope(db_url) as s:
        with pytest.raises(ConflictError, match="last active admin"):
            users.disable_user(s, "root")
        with pytest.raises(ConflictError, match="last active admin"):
            users.set_role(s, "root", "reviewer")
        users.add_user(s, "boss", "admin", PASSWORD)
        users.disable_user(s, "root")
        assert users.count_admins(s) == 1


def test_a_hash_made_with_older_parameters_is_upgraded_at_login(db_url, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))
    add(db_url, "ann", "annotator")
    monkeypatch.undo()
    login(db_url, "ann")
    with session_scope(db_url) as s:
        (stored,) = s.scalars(select(User)).all()
    assert not users._hasher.check_needs_rehash(stored.password_hash)
    assert login(db_url, "ann").name == "ann"


# ---------------------------------------------------------------- fewlabel user


@pytest.fixture
def db(db_url):
    """The --db argument for the migrated test database."""
    return db_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_commands_add_list_passwd_and_disable(db, capsys, monkeypatch):
    code, out, err = run(capsys, "--db", db, "user", "add", "ann", "--role", "annotator",
                         "--password", PASSWORD)  # fmt: skip
    assert (code, out, err) == (0, "added annotator 'ann'\n", "")

    typed = iter(["s3cret-typed", "s3cret-typed"])
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(typed))
    code, out, err = run(capsys, "user", "add", "root", "--role", "admin", "--db", db)
    assert code == 0 and prompts == ["Password for root: ", "Repeat it: "]
    assert "s3cret-typed" not in out + err
    assert login(db, "root", "s3cret-typed").role == "admin"

    code, out, _ = run(capsys, "--db", db, "user", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "role", "state", "created"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["ann", "annotator", "active"],
        ["root", "admin", "active"],
    ]
    assert "argon2" not in out and PASSWORD not in out

    typed = iter(["another pass", "another pass"])
    code, out, err = run(capsys, "--db", db, "user", "passwd", "ann")
    assert (code, out) == (0, "password of 'ann' changed\n")
    assert "another pass" not in out + err
    assert login(db, "ann", "another pass").name == "ann"

    code, out, _ = run(capsys, "--db", db, "user", "disable", "ann")
    assert code == 0 and "disabled 'ann'" in out
    assert run(capsys, "--db", db, "user", "list")[1].splitlines()[1].split()[:3] == [
        "ann",
        "annotator",
        "disabled",
    ]
    with pytest.raises(AuthenticationError):
        login(db, "ann", "another pass")
    assert run(capsys, "--db", db, "user", "enable", "ann")[0] == 0
    assert login(db, "ann", "another pass").name == "ann"


def test_user_role_changes_a_role_and_keeps_an_admin(db, capsys):
    add(db, "root", "admin")
    add(db, "ann", "annotator")
    code, out, err = run(capsys, "--db", db, "user", "role", "ann", "reviewer")
    assert (code, err) == (0, "") and out.startswith("'ann' is now reviewer")
    with session_scope(db) as s:
        assert users.acting(s, "ann", "review").role == "reviewer"
    code, out, err = run(capsys, "--db", db, "user", "role", "root", "annotator")
    assert code == 2 and out == "" and "last active admin" in err and err.count("\n") == 1
    assert login(db, "root").role == "admin"  # refused: nothing written
    assert run(capsys, "--db", db, "user", "role", "ann", "admin")[0] == 0
    assert run(capsys, "--db", db, "user", "role", "root", "annotator")[0] == 0
    assert [(a.name, a.role) for a in _accounts(db)] == [("ann", "admin"), ("root", "annotator")]
    code, _, err = run(capsys, "--db", db, "user", "role", "nobody", "admin")
    assert code == 2 and "no account named 'nobody'" in err
    with pytest.raises(SystemExit):  # argparse: a role that does not exist
        main(["--db", db, "user", "role", "ann", "owner"])
    assert "invalid choice: 'owner'" in capsys.readouterr().err


def _accounts(url: str) -> list[users.Account]:
    with session_scope(url) as s:
        return users.list_users(s)


def test_user_command_errors_are_one_line_and_write_nothing(db, capsys, monkeypatch):
    typed = iter(["first password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    for argv, message in [
        (["user", "add", "ann", "--role", "annotator"], "the two passwords differ"),
        (["user", "add", "ann", "--role", "admin", "--password", "short"], "at least 8"),
        (["user", "passwd", "nobody", "--password", PASSWORD], "no account named 'nobody'"),
        (["user", "disable", "nobody"], "no account named 'nobody'"),
    ]:
        code, out, err = run(capsys, "--db", db, *argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and message in err, err
        assert "first password" not in err and "second password" not in err
    with pytest.raises(SystemExit):  # argparse: a role that does not exist
        main(["--db", db, "user", "add", "ann", "--role", "owner", "--password", PASSWORD])
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    assert run(capsys, "--db", db, "user", "list")[1].startswith("no accounts yet")


# ---------------------------------------------------------------- fewlabel serve --host


@pytest.fixture
def serving(monkeypatch) -> list:
    """`serve` up to the point it would start Streamlit: the commands it would run."""
    import core.cli.child as child

    started: list = []
    monkeypatch.setattr(child, "run_child", lambda cmd, env: started.append(cmd) or 0)
    return started


def test_serving_a_network_needs_an_admin_account_or_no_auth(db, capsys, serving):
    code, out, err = run(capsys, "--db", db, "serve", "--no-demo", "--host", "0.0.0.0")
    assert code == 2 and serving == [] and out == ""
    assert err.count("\n") == 1
    assert "refusing to serve on 0.0.0.0 without an admin account" in err
    assert "fewlabel user add NAME --role admin" in err and "--no-auth" in err

    code, out, err = run(capsys, "--db", db, "serve", "--no-demo", "--host", "0.0.0.0", "--no-auth")
    assert code == 0 and len(serving) == 1
    assert err.count("\n") == 1 and err.startswith("fewlabel: warning: --no-auth")

    add(db, "ann", "annotator")  # an annotator is not enough
    assert run(capsys, "--db", db, "serve", "--no-demo", "--host", "10.0.0.5")[0] == 2
    add(db, "root", "admin")
    code, out, err = run(capsys, "--db", db, "serve", "--no-demo", "--host", "0.0.0.0")
    assert code == 0 and err == "" and len(serving) == 2
    cmd = serving[-1]
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"


def test_loopback_serves_without_accounts(db, capsys, serving):
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        code, _, err = run(capsys, "--db", db, "serve", "--no-demo", "--host", host)
        assert code == 0 and err == ""
    assert run(capsys, "--db", db, "serve", "--no-demo")[0] == 0  # binds 127.0.0.1
    assert len(serving) == 5
    assert is_loopback("[::1]") and not is_loopback("0.0.0.0") and not is_loopback("")
    assert not is_loopback("my-host.example") and not is_loopback("::")
