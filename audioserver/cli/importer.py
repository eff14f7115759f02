"""`python -m audioserver import PATH...`: add files already on this machine."""

import shutil
import sys
from collections import Counter
from pathlib import Path

from ..config import Config
from ..errors import AudioServerError, NameTaken
from ..library import Library, Staged, open_library
from ..names import validate_name


async def import_paths(config: Config, paths: list[Path]) -> int:
    """Import every file under `paths`; print a summary; 1 if any was rejected."""
    progress = ProgressBar()
    files, rejected = _expand(paths, progress)
    progress.total = len(files)
    added = skipped = 0
    async with open_library(config, reconcile_storage=False) as library:
        for file in files:
            progress.show(file.name)
            outcome, message = await _import_one(library, config, file)
            if outcome == "added":
                added += 1
            elif outcome == "skipped":
                skipped += 1
            else:
                rejected[outcome] += 1
            if message:
                progress.note(f"{outcome} {file}: {message}")
            progress.advance()
    progress.finish()
    why = ", ".join(f"{count} {reason}" for reason, count in rejected.most_common())
    print(f"added {added}, skipped {skipped} (name taken), rejected {rejected.total()}"
          + (f" ({why})" if why else ""))
    return 1 if rejected else 0


async def _import_one(library: Library, config: Config, file: Path) -> tuple[str, str | None]:
    """('added' | 'skipped' | why it was rejected, and a message for the user)."""
    try:
        name = validate_name(file.name)
        if await library.db.exists(name):
            return "skipped", f"the name {name!r} is taken"
        if file.stat().st_size > config.max_upload_size:
            return "too large", f"larger than --max-upload-size ({config.max_upload_size} bytes)"
        upload = await library.storage.copy_in(file)
        await library.add([Staged(name, upload)])
    except NameTaken as exc:
        return "skipped", exc.detail
    except AudioServerError as exc:
        return _REASONS.get(exc.status, exc.title.lower()), exc.detail
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    return "added", None


_REASONS = {415: "not audio", 400: "bad name", 507: "disk full"}


def _expand(paths: list[Path], progress: "ProgressBar") -> tuple[list[Path], Counter]:
    """Every file under `paths`, sorted within each folder; missing paths counted."""
    files, rejected = [], Counter()
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            progress.note(f"missing {path}: no such file or folder")
            rejected["missing"] += 1
    return files, rejected


class ProgressBar:
    """A one-line bar on stderr redrawn in place, when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, stream=sys.stderr):
        self.total = self.count = 0
        self.stream = stream
        self.live = stream.isatty()

    def show(self, label: str) -> None:
        if not self.live:
            return
        filled = self.WIDTH * self.count // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = f"[{bar}] {self.count}/{self.total} {label}"
        self._write("\r\x1b[K" + line[: shutil.get_terminal_size().columns - 1])

    def note(self, message: str) -> None:
        """A line that stays, printed above the bar."""
        self._write(("\r\x1b[K" if self.live else "") + message + "\n")

    def advance(self, by: int = 1) -> None:
        self.count += by

    def finish(self) -> None:
        if self.live:
            self.show("done")
            self._write("\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
