"""The command line: `python -m audioserver` serves, `... import PATH...` adds files,
`... recover` rebuilds a lost database, `... migrate` copies it into another;
`user` and `token` are in users.py."""

import argparse
import logging
import sys
from dataclasses import fields
from pathlib import Path

from .cli import users
from .cli.serve import LOG_FORMAT, serve
from .config import (
    AUTH_MODES,
    DEFAULT_DATABASE_POOL,
    ENVIRONMENT,
    VISIBILITIES,
    Config,
    defaults_from_environment,
    parse_address,
    parse_allowed_host,
    parse_cache_size,
    parse_count,
    parse_database,
    parse_rate,
    parse_redis,
    parse_seconds,
    parse_token,
    parse_size,
    parse_storage,
)
from .errors import StartupError


def build_parser(defaults: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audioserver",
        description="A self-hosted audio file server. Every flag can also be "
        "given as an environment variable: "
        + ", ".join(variable for variable, _ in ENVIRONMENT.values()) + ".",
    )
    parser.add_argument("--host", default=defaults["host"],
                        help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults["port"],
                        help="port to listen on (default %(default)s)")
    parser.add_argument("--workers", type=_flag(parse_count), default=defaults["workers"],
                        help="serving processes sharing the port (default: one per core, "
                        "%(default)s here)")
    parser.add_argument("--auth", choices=AUTH_MODES, default=defaults["auth"],
                        help="open: no accounts, everyone may do everything; users: sign-in, "
                        "owners and private files (default: open on a loopback address, "
                        "users otherwise)")
    parser.add_argument("--default-visibility", choices=VISIBILITIES,
                        default=defaults["default_visibility"],
                        help="of uploads that do not say (default %(default)s)")
    for budget, what in [("read", "reads (GET, HEAD)"), ("write", "writes other than uploads"),
                         ("upload", "uploads")]:
        parser.add_argument(f"--{budget}-rate", type=_flag(parse_rate),
                            default=defaults[f"{budget}_rate"], metavar="N/PERIOD",
                            help=f"{what} per account, or per address when signed out: N/s, "
                            "N/min or N/hour, or off (default %(default)s)")
    parser.add_argument("--trusted-proxy", action="append", dest="trusted_proxies",
                        metavar="ADDRESS", type=_flag(parse_address),
                        help="a reverse proxy's address, whose X-Forwarded-For names the client "
                        "(repeatable; default: none, the peer is the client)")
    parser.add_argument("--allowed-host", action="append", dest="allowed_hosts",
                        metavar="NAME", type=_flag(parse_allowed_host),
                        help="a name browsers reach the server by, beside the address it "
                        "listens on; requests for other names are refused (repeatable; "
                        "'*' turns the check off)")
    parser.add_argument("--header-timeout", type=_flag(parse_seconds),
                        default=defaults["header_timeout"], metavar="SECONDS",
                        help="a request's headers must arrive within this (default %(default)g)")
    parser.add_argument("--body-timeout", type=_flag(parse_seconds),
                        default=defaults["body_timeout"], metavar="SECONDS",
                        help="a body's grace period, then it must keep --body-min-rate "
                        "(default %(default)g)")
    parser.add_argument("--body-min-rate", type=_flag(parse_size),
                        default=defaults["body_min_rate"], metavar="BYTES",
                        help="the slowest body accepted, bytes a second, with K, M, G "
                        "(default %(default)s)")
    parser.add_argument("--shutdown-timeout", type=_flag(parse_seconds),
                        default=defaults["shutdown_timeout"], metavar="SECONDS",
                        help="on SIGTERM, how long requests in flight may take to finish "
                        "(default %(default)g)")
    parser.add_argument("--redis", type=_flag(parse_redis), default=defaults["redis"],
                        metavar="URL", help="keep the rate limits in this Redis, shared by "
                        "several instances: redis://HOST:PORT/DB (default: a file in the "
                        "data directory, for one machine)")
    parser.add_argument("--metrics-token", type=_flag(parse_token),
                        default=defaults["metrics_token"], metavar="TOKEN",
                        help="/metrics answers a Bearer TOKEN from anywhere (default: "
                        "loopback only); AUDIOSERVER_METRICS_TOKEN keeps it out of ps")
    parser.add_argument("--s3-redirect", action="store_true", default=defaults["s3_redirect"],
                        help="with s3://: answer downloads with a redirect to a link the store "
                        "serves for 5 minutes, instead of streaming them")
    _add_storage_flags(parser, defaults)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    importer = commands.add_parser(
        "import", help="add existing audio files (folders recursively)",
        description="Add existing audio files to the library, skipping names "
        "that are taken. Folders are searched recursively.",
    )
    importer.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    # SUPPRESS: a flag given before `import` is not reset by the subcommand.
    _add_storage_flags(importer, dict.fromkeys(defaults, argparse.SUPPRESS))
    recoverer = commands.add_parser(
        "recover", help="rebuild a lost database from the stored files",
        description="Rebuild the library's rows (names, owners, visibility) from the "
        "metadata kept beside every stored file, checking each file's sha256. "
        "Stop the server first.",
    )
    recoverer.add_argument("--merge", action="store_true",
                           help="the database is not empty: add only the stored files "
                           "no row names (those the server logs as kept at start)")
    _add_storage_flags(recoverer, dict.fromkeys(defaults, argparse.SUPPRESS))
    migrator = commands.add_parser(
        "migrate", help="copy the library's rows and accounts into another database",
        description="Copy every file's row, every account (with its password hash and "
        "role) and every API token from one database to another, SQLite or PostgreSQL, "
        "then verify both hold the same: counts and checksums. Both databases describe "
        "the same stored files (the data directory), which are not touched. Sessions and "
        "failed sign-ins are not copied: people sign in again. Safe to run again: what "
        "the target already holds is skipped, so an interrupted run is finished by the "
        "next. Stop the server first.",
    )
    migrator.add_argument("--from", dest="source", type=_flag(parse_database), metavar="URL",
                          help="the database to copy from, as --database takes it "
                          "(default: --database, or audioserver.sqlite3 in --data-dir)")
    targets = migrator.add_mutually_exclusive_group(required=True)
    targets.add_argument("--to", dest="target", type=_flag(parse_database), metavar="URL",
                         help="the database to copy into, as --database "
                         "takes it; made and brought to the current schema if new")
    targets.add_argument("--to-storage", dest="target_storage", type=_flag(parse_storage),
                         metavar="DIR|s3://BUCKET/PREFIX",
                         help="instead: copy the stored files from --storage to this "
                         "directory or bucket, under the same keys, each verified by sha256 "
                         "(the database is unchanged; run again to finish an interrupted run)")
    _add_storage_flags(migrator, dict.fromkeys(defaults, argparse.SUPPRESS))
    checker = commands.add_parser(
        "check", help="check every file's row against its stored file",
        description="Check that every row's file is stored, with its size (and with "
        "--deep its sha256), and list stored files no row names. Exits 1 if a file is "
        "missing or damaged. Safe beside a running server.",
    )
    checker.add_argument("--repair", action="store_true",
                         help="mark rows whose file is missing unavailable (410), and "
                         "those whose file is back available, as the server's start does")
    checker.add_argument("--deep", action="store_true",
                         help="also read every stored file and compare its sha256")
    _add_storage_flags(checker, dict.fromkeys(defaults, argparse.SUPPRESS))
    users.add_commands(
        commands, lambda sub: _add_storage_flags(sub, dict.fromkeys(defaults, argparse.SUPPRESS)))
    return parser


def _add_storage_flags(parser: argparse.ArgumentParser, defaults: dict) -> None:
    parser.add_argument("--data-dir", type=Path, default=defaults["data_dir"],
                        help="where the database and the files live (default ./data)")
    parser.add_argument("--database", type=_flag(parse_database), default=defaults["database"],
                        metavar="URL", help="the metadata database: a SQLite file's path, "
                        "sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DB "
                        "(default: audioserver.sqlite3 in --data-dir)")
    parser.add_argument("--database-pool", type=_flag(parse_count),
                        default=defaults["database_pool"], metavar="N", help="PostgreSQL connections per process at most "
                        # Not %(default)s: the subcommands' default is SUPPRESS,
                        # which argparse cannot show (their --help would crash).
                        f"(default {DEFAULT_DATABASE_POOL})")
    parser.add_argument("--storage", type=_flag(parse_storage), default=defaults["storage"],
                        metavar="DIR|s3://BUCKET/PREFIX",
                        help="where the audio files live: a directory, or an S3-compatible "
                        "bucket reached through the AWS_* variables (default: --data-dir)")
    parser.add_argument("--cache-dir", type=Path, default=defaults["cache_dir"], metavar="DIR",
                        help="with s3://: local copies of recently uploaded and played files "
                        "(default: cache in --data-dir)")
    parser.add_argument("--cache-size", type=_flag(parse_cache_size),
                        default=defaults["cache_size"], metavar="SIZE",
                        help="with s3://: the cache's size, with K, M, G; 0 for none "
                        "(default 1G)")
    parser.add_argument("--s3-path-style", action="store_true", default=defaults["s3_path_style"],
                        help="with s3://: address the bucket in the path (http://HOST/BUCKET), "
                        "as MinIO, SeaweedFS and most self-hosted stores need")
    parser.add_argument("--max-upload-size", type=_flag(parse_size),
                        default=defaults["max_upload_size"], metavar="SIZE",
                        help="largest file accepted, in bytes or with K, M, G (default 2G)")


def _flag(parse):
    """An argparse type from one of settings' parsers, which raise ValueError:
    a flag and its environment variable are read by the same function."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__  # argparse names it in its messages
    return convert


def _run(coroutine):
    """asyncio.run, with asyncio (8 MiB) imported only by the commands, which
    run a loop in this process: the supervisor of several workers runs none."""
    import asyncio

    return asyncio.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    builtin = {field.name: field.default for field in fields(Config)}
    try:
        defaults = {**builtin, **defaults_from_environment()}
    except ValueError as exc:
        print(f"audioserver: bad environment variable: {exc}", file=sys.stderr)
        return 2
    args = build_parser(defaults).parse_args(argv)
    # Every flag is named after its Config field.
    given = {name: value for name, value in vars(args).items() if name in builtin}
    # --trusted-proxy appends: none given leaves the variable's (or no) proxies.
    given["trusted_proxies"] = tuple(args.trusted_proxies or defaults["trusted_proxies"])
    given["allowed_hosts"] = tuple(args.allowed_hosts or defaults["allowed_hosts"])
    config = Config(**given)
    if config.s3_redirect and not config.on_s3:
        print("audioserver: --s3-redirect needs the files in a bucket (--storage s3://...)",
              file=sys.stderr)
        return 2
    # The commands report what they do themselves; the server logs it.
    level = logging.INFO if args.command is None else logging.WARNING
    logging.basicConfig(level=level, format=LOG_FORMAT)
    try:
        # Each command imports what it needs only when it runs: the
        # supervisor of several workers (serve) needs none of it.
        if args.command == "import":
            from .cli.importer import import_paths
            return _run(import_paths(config, args.paths))
        if args.command == "recover":
            from .cli.recover import recover
            return _run(recover(config, args.merge))
        if args.command == "check":
            from .cli.check import check
            return _run(check(config, args.repair, args.deep))
        if args.command == "migrate" and args.target_storage:
            from .cli.movefiles import move_files
            return _run(move_files(config, args.target_storage))
        if args.command == "migrate":
            from .cli.migrate import migrate
            return _run(migrate(config, args.source, args.target))
        if args.command in ("user", "token"):
            return _run(users.run(config, args))
        serve(config)
    except StartupError as exc:
        print(f"audioserver: not starting: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
