"""`python -m audioserver recover`: rebuild the library's rows from the store.

After the database is lost, every stored file still has its `.meta` sidecar
(storage/meta.py): its name, owner, visibility, creation time, size and sha256. Each
file is hashed and checked against it, probed again (the probe is what the
upload ran, so the metadata comes out exactly as it was), and its row added.
Owners that no longer exist come back as accounts without a usable password.
"""

import sys
from collections import Counter

from ..accounts import User, validate_user_name
from ..config import Config
from ..errors import AudioServerError, NameTaken, UserExists
from ..clock import now_rfc3339
from ..library import COVER_SUFFIX, Library, open_library
from ..metadata import AccountStore
from ..media.tags import image_type
from ..models import AudioRecord
from ..names import validate_name
from ..storage import meta
from .importer import ProgressBar

# Not an Argon2 hash, so no password matches it (auth._verify) until
# `user passwd` sets one.
NO_PASSWORD = "!recovered: set a password with `user passwd`"


class Skipped(Exception):
    """A stored file recover leaves out: why (a short reason) and what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


async def recover(config: Config, merge: bool = False) -> int:
    """Add a row for every stored file no row names; print a summary; 1 if
    any file was skipped or the database was not lost (without `merge`)."""
    progress = ProgressBar()
    skipped, recreated = Counter(), []
    added = 0
    async with open_library(config, reconcile_storage=False, recovering=True) as library:
        rows = await library.db.storage_keys()
        if rows and not merge:
            print(f"audioserver: the database lists {len(rows)} files, so it was not lost; "
                  "nothing was changed. To add only the stored files no row names, run "
                  "`python -m audioserver recover --merge`", file=sys.stderr)
            return 1
        keys = sorted(await library.storage.stored_keys() - rows.keys())
        progress.total = len(keys)
        accounts = library.accounts
        for key in keys:
            progress.show(key)
            try:
                record = await _recover_one(library, key)
                if record.owner is not None and await _recreate_owner(accounts, record.owner):
                    recreated.append(record.owner)
                await library.db.insert([record])
                added += 1
            except Skipped as exc:
                skipped[exc.reason] += 1
                progress.note(f"skipped {key}: {exc.message}; the file is left in place")
            except NameTaken as exc:
                skipped["name taken"] += 1
                progress.note(f"skipped {key}: {exc.detail}; the file is left in place")
            progress.advance()
    progress.finish()
    _summarise(added, skipped, recreated)
    return 1 if skipped else 0


async def _recover_one(library: Library, key: str) -> AudioRecord:
    """The row of the stored file `key`, checked against its sidecar."""
    data = await library.storage.read_meta(key)
    if data is None:
        raise Skipped("no sidecar", "it has no .meta sidecar, so its name is unknown; add it "
                      "with `python -m audioserver import` under a name you choose")
    try:
        fields = meta.decode(data)
        name = validate_name(fields["name"])
        owner = fields["owner"] and validate_user_name(fields["owner"])
    except (ValueError, AudioServerError) as exc:
        raise Skipped("bad sidecar", f"its .meta sidecar cannot be used: "
                      f"{getattr(exc, 'detail', exc)}") from None
    sha256, size = await library.storage.hash_stored(key)
    if (sha256, size) != (fields["sha256"], fields["size"]):
        raise Skipped("sha256 mismatch", f"{name!r} is not the file that was uploaded: its "
                      f"sha256 or size differs from the one recorded then")
    try:
        async with library.storage.local_copy(key) as path:
            info = await library.probes.probe(path, name)
    except AudioServerError as exc:
        raise Skipped("not audio", exc.detail) from None
    return AudioRecord(
        name=name, duration=info.duration, frames=info.frames, samplerate=info.samplerate,
        channels=info.channels, format=info.format, subtype=info.subtype,
        content_type=info.content_type, size=size, sha256=sha256,
        created_at=fields["created_at"], owner=owner, visibility=fields["visibility"],
        storage_key=key, cover=await _cover_type(library, key),
        # The sidecar's text fields are the file's tags as edited since.
        **(fields["texts"] or info.tags),
    )


async def _cover_type(library: Library, key: str) -> str | None:
    """The media type of the cover art kept beside `key`, if any."""
    data = await library.storage.read_sidecar(key, COVER_SUFFIX)
    return None if data is None else image_type(data)


async def _recreate_owner(accounts: AccountStore, name: str) -> bool:
    """Make the account `name` if it is gone; whether it was made."""
    if await accounts.password_hash(name) is not None:
        return False
    try:
        await accounts.add_user(User(name, "user"), NO_PASSWORD, now_rfc3339())
    except UserExists:
        return False
    return True


def _summarise(added: int, skipped: Counter, recreated: list[str]) -> None:
    why = ", ".join(f"{count} {reason}"
                    for reason, count in sorted(skipped.items(), key=lambda item: (-item[1], item[0])))
    if recreated:
        print(f"recreated {len(recreated)} account{'s' if len(recreated) != 1 else ''} "
              f"without a password: {', '.join(sorted(recreated))}. Set one with "
              "`python -m audioserver user passwd NAME`; an admin is made with "
              "`python -m audioserver user add NAME --admin`")
    print(f"recovered {added}, skipped {skipped.total()}" + (f" ({why})" if why else ""))
