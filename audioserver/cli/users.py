"""`python -m audioserver user …` and `… token create`: accounts from the console.

They work on the data directory directly, with or without a server running
(the database is shared safely), so the first admin can be made before the
server is ever started.
"""

from __future__ import annotations  # Auth in annotations, imported only to run

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from ..accounts import User, validate_user_name
from ..config import Config
from ..errors import AudioServerError

if TYPE_CHECKING:
    from ..auth import Auth


def add_commands(commands, storage_flags) -> None:
    """The `user` and `token` subcommands; `storage_flags(parser)` adds --data-dir."""
    user = commands.add_parser("user", help="add, list, remove accounts or set a password")
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see and change every file")
    _password_flag(add)
    actions.add_parser("list", help="every account, its role and how many files it owns")
    remove = actions.add_parser("remove", help="delete an account; its files stay, ownerless")
    remove.add_argument("name")
    passwd = actions.add_parser("passwd", help="set a new password (signs the account out)")
    passwd.add_argument("name")
    passwd.add_argument("--revoke-tokens", action="store_true",
                        help="also revoke every API token of the account")
    _password_flag(passwd)
    token = commands.add_parser("token", help="create an API token for curl and scripts")
    token_actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = token_actions.add_parser(
        "create", help="print a new API token for an account (shown once)")
    create.add_argument("name")
    create.add_argument("--label", default="command line", help="to tell tokens apart")
    create.add_argument("--expires", metavar="LIFETIME", default="",
                        help="e.g. 30d or 12h; by default it lasts until revoked")
    for parser in [*actions.choices.values(), create]:
        storage_flags(parser)


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin, not the terminal")


async def run(config: Config, args: argparse.Namespace) -> int:
    """Run one account command; 0 on success, 1 with a message on stderr otherwise."""
    # Here, not at the top: `python -m audioserver` imports this module for
    # add_commands, and its supervisor must not load the library.
    from ..auth import Auth
    from ..library import open_library

    try:
        async with open_library(config, reconcile_storage=False, parsers=False) as library:
            auth = Auth(library.accounts, config)
            await _COMMANDS[args.command, args.action](auth, args)
    except AudioServerError as exc:
        print(f"audioserver: {exc.detail}", file=sys.stderr)
        return 1
    return 0


async def _user_add(auth: Auth, args) -> None:
    user = User(validate_user_name(args.name), "admin" if args.admin else "user")
    await auth.add_user(user, _password(args))
    print(f"added {user.role} {user.name!r}")


async def _user_list(auth: Auth, args) -> None:
    users = await auth.accounts.users()
    if not users:
        print("no accounts yet; add one with: python -m audioserver user add NAME --admin")
    for user, created_at, files in users:
        print(f"{user.name}\t{user.role}\t{files} file{'s' if files != 1 else ''}\t"
              f"since {created_at}")


async def _user_remove(auth: Auth, args) -> None:
    await auth.accounts.remove_user(args.name)
    print(f"removed {args.name!r}; its files stay, without an owner")


async def _user_passwd(auth: Auth, args) -> None:
    await auth.accounts.set_password(args.name, await auth.hash_password(_password(args)),
                                     revoke_tokens=args.revoke_tokens)
    if args.revoke_tokens:
        print(f"new password for {args.name!r}; its browser sessions are signed out "
              "and its API tokens revoked")
    else:
        print(f"new password for {args.name!r}; its browser sessions are signed out "
              "(its API tokens still work: --revoke-tokens revokes them)")


async def _token_create(auth: Auth, args) -> None:
    found = await auth.accounts.password_hash(args.name)
    if found is None:
        raise AudioServerError(f"there is no account called {args.name!r}")
    from ..auth import parse_token_lifetime

    lifetime = parse_token_lifetime(args.expires)
    secret, _ = await auth.create_token(found[0], args.label, lifetime)
    print(secret)  # alone on stdout, for TOKEN=$(python -m audioserver token create NAME)


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AudioServerError("the two passwords differ; nothing was changed")
    return first


_COMMANDS = {
    ("user", "add"): _user_add,
    ("user", "list"): _user_list,
    ("user", "remove"): _user_remove,
    ("user", "passwd"): _user_passwd,
    ("token", "create"): _token_create,
}
