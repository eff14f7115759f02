"""Looking at what a storage holds, whichever backend it is."""

import os

from audioserver.storage.s3 import S3Storage


async def stored_names(storage) -> list[str]:
    """Every stored name (files, sidecars, trash), as `<key>` or `<key>.<suffix>`."""
    if isinstance(storage, S3Storage):
        return await storage.names()
    return sorted(os.listdir(storage.audio_dir))


async def stored_files(library) -> list[str]:
    """Everything stored, and unfinished uploads in the local staging area."""
    return sorted(await stored_names(library.storage) + os.listdir(library.storage.temp_dir))
