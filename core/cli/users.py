"""Commands over accounts: user add, list, passwd, role, disable, enable; and the check `serve`
makes before it listens beyond this machine.

A password is read with getpass (asked twice) unless given with --password, which a script
may use (the command line is visible to other users of the machine in `ps`). Passwords are
never printed.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys

from core.cli.common import table
from core.errors import FewlabelError, ValidationError
from core.labeling.users import ROLES


def add_commands(sub: argparse._SubParsersAction, db: argparse.ArgumentParser) -> None:
    user = sub.add_parser("user", parents=[db], help="accounts and roles for a shared server")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    p = actions.add_parser("add", parents=[db], help="add an account")
    p.add_argument("name", help="the account's name, also the annotator name it labels under")
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument("--password", help="the password (asked for when not given)")
    p.set_defaults(handler=cmd_user_add)

    p = actions.add_parser("list", parents=[db], help="list accounts and their roles")
    p.set_defaults(handler=cmd_user_list)

    p = actions.add_parser("passwd", parents=[db], help="set an account's password")
    p.add_argument("name")
    p.add_argument("--password", help="the new password (asked for when not given)")
    p.set_defaults(handler=cmd_user_passwd)

    p = actions.add_parser("role", parents=[db], help="change an account's role")
    p.add_argument("name")
    p.add_argument("role", choices=list(ROLES))
    p.set_defaults(handler=cmd_user_role)

    p = actions.add_parser("disable", parents=[db], help="stop an account from logging in")
    p.add_argument("name")
    p.set_defaults(handler=cmd_user_disable)

    p = actions.add_parser("enable", parents=[db], help="let a disabled account log in again")
    p.add_argument("name")
    p.set_defaults(handler=cmd_user_enable)


def _password(given: str | None, name: str) -> str:
    """The password given, or one typed twice without echo."""
    if given is not None:
        return given
    first = getpass.getpass(f"Password for {name}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValidationError("the two passwords differ; nothing was changed")
    return first


def cmd_user_add(args, url: str) -> int:
    from core.labeling.users import add_user
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    password = _password(args.password, args.name)
    with session_scope(url) as session:
        account = add_user(session, args.name, args.role, password)
    print(f"added {account.role} {account.name!r}")
    return 0


def cmd_user_list(args, url: str) -> int:
    from core.labeling.users import list_users
    from core.store.db import require_schema, session_scope

    require_schema(url)  # a listing never writes, not even a schema upgrade
    with session_scope(url) as session:
        accounts = list_users(session)
    if not accounts:
        print(
            "no accounts yet: the app needs no login on 127.0.0.1; add one with "
            "`fewlabel user add NAME --role admin`"
        )
        return 0
    rows = [
        {
            "name": a.name,
            "role": a.role,
            "state": "disabled"
            if a.disabled
            else f"locked until {a.locked_until:%H:%M:%S} UTC"
            if a.locked_until
            else "active",
            "created": f"{a.created_at:%Y-%m-%d %H:%M}",
        }
        for a in accounts
    ]
    print(table(rows, left=["name", "role", "state"]))
    return 0


def cmd_user_passwd(args, url: str) -> int:
    from core.labeling.users import get_account, set_password
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        get_account(session, args.name)  # an unknown name fails before the prompt
    password = _password(args.password, args.name)
    with session_scope(url) as session:
        account = set_password(session, args.name, password)
    print(f"password of {account.name!r} changed")
    return 0


def cmd_user_role(args, url: str) -> int:
    from core.labeling.users import set_role
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        account = set_role(session, args.name, args.role)
    print(f"{account.name!r} is now {account.role}: it takes effect on the account's next click")
    return 0


def cmd_user_disable(args, url: str) -> int:
    from core.labeling.users import disable_user
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        account = disable_user(session, args.name)
    print(f"disabled {account.name!r}: it can no longer log in")
    return 0


def cmd_user_enable(args, url: str) -> int:
    from core.labeling.users import enable_user
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        account = enable_user(session, args.name)
    print(f"enabled {account.name!r}")
    return 0


# ---------------------------------------------------------------- serve


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to any interface


def check_serving(url: str, host: str, *, no_auth: bool) -> None:
    """Refuse to serve beyond loopback without an active admin account, unless `no_auth`
    (then warn on stderr). Serving a team is an explicit choice."""
    if is_loopback(host):
        return
    from core.labeling.users import count_admins
    from core.store.db import ensure_schema, session_scope

    ensure_schema(url)
    with session_scope(url) as session:
        admins = count_admins(session)
    if admins:
        return
    if not no_auth:
        raise FewlabelError(
            f"refusing to serve on {host} without an admin account: add one with "
            "`fewlabel user add NAME --role admin`, or pass --no-auth to serve without login"
        )
    print(
        f"fewlabel: warning: --no-auth: serving on {host} with no admin account; until an "
        "account exists, anyone who can reach it can label, review, train and export",
        file=sys.stderr,
    )
