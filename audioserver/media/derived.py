"""Keeping what is derived from a stored file (peaks, previews, what a
parser found) as a sidecar of it, safely against a delete meanwhile."""

import logging

from ..errors import StorageRefused
from ..models import AudioRecord
from ..storage import Storage

log = logging.getLogger(__name__)


async def keep(storage: Storage, record: AudioRecord, suffix: str, data: bytes,
               what: str) -> None:
    """Store `data` as the sidecar `suffix` of `record`'s file. Only a copy
    kept for next time is at stake: if the storage refuses, it is logged and
    the work is done again next time."""
    try:
        await storage.write_sidecar(record.storage_key, suffix, data)
    except StorageRefused as exc:
        log.warning("the storage refused to keep the %s of %r (%s); served, not kept",
                    what, record.name, exc.__cause__)
        return
    await drop_if_deleted(storage, record, suffix)


async def drop_if_deleted(storage: Storage, record: AudioRecord, suffix: str) -> bool:
    """After writing the sidecar `suffix`: if the file was deleted meanwhile,
    the delete removed the sidecars there were and this one came after it.
    Only this one goes: the file may be aside for a delete not over yet.
    Whether it went."""
    if await storage.exists(record.storage_key):
        return False
    await storage.remove_sidecar(record.storage_key, suffix)
    return True
