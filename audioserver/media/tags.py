"""Reading a file's tags and cover art. Runs inside the parser worker
(probe.py): tags are untrusted bytes too.

mutagen reads ID3v2/v1 (MP3, and the ID3 chunks of WAV and AIFF), Vorbis
comments (FLAC, Ogg Vorbis, Opus) and embedded pictures. What it does not
read, RIFF INFO lists and AIFF's and CAF's own text chunks, libsndfile does
(sf_get_string, as SoundFile's `title`, `artist`... properties): those fill
the fields mutagen left empty. Tags never fail an upload: a file whose tags
cannot be read has none.
"""

import base64
import logging
import os
import unicodedata

import soundfile

from ..models import MAX_TEXT

log = logging.getLogger(__name__)

# Cover art larger than this is not kept (a scan of a booklet, say): it must
# fit in a worker's answer, and a page shows it a few hundred pixels wide.
MAX_COVER = 2 * 1024 * 1024
# The image types served, recognised by their first bytes, never by what
# the tag claims: only these, so no page can be made to run as a document.
IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
# ID3v2 frames by field; COMM is the comment.
ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "track": "TRCK",
              "date": "TDRC", "genre": "TCON", "comment": "COMM"}
# Vorbis comment names by field, the first present wins.
VORBIS_NAMES = {"title": ("title",), "artist": ("artist",), "album": ("album",),
                "track": ("tracknumber",), "date": ("date", "year"), "genre": ("genre",),
                "comment": ("comment", "description")}
# libsndfile's strings (SoundFile properties) by field.
LIBSNDFILE_NAMES = {"title": "title", "artist": "artist", "album": "album",
                    "track": "tracknumber", "date": "date", "genre": "genre",
                    "comment": "comment"}


def read_tags(path: str | os.PathLike) -> tuple[dict, tuple[str, bytes] | None]:
    """The text tags of `path` (only fields that have text) and its cover
    art as (media type, bytes), or None."""
    tags, cover = {}, None
    try:
        tags, cover = _from_mutagen(path)
    except Exception as exc:  # mutagen's own errors, or bytes it did not expect
        log.info("the tags of %s could not be read by mutagen: %r", path, exc)
    try:
        for field, value in _from_libsndfile(path).items():
            tags.setdefault(field, value)
    except (RuntimeError, OSError) as exc:
        log.info("libsndfile read no tags from %s: %s", path, exc)
    return tags, cover


def _from_mutagen(path) -> tuple[dict, tuple[str, bytes] | None]:
    import mutagen
    from mutagen.id3 import ID3

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return {}, None
    if isinstance(audio.tags, ID3):
        texts = {field: _id3_text(audio.tags, frame) for field, frame in ID3_FRAMES.items()}
        pictures = [(frame.mime, frame.data) for frame in audio.tags.getall("APIC")]
    else:
        texts = {field: _first(audio.tags, names) for field, names in VORBIS_NAMES.items()}
        pictures = _vorbis_pictures(audio)
    tags = {field: text for field, value in texts.items() if (text := clean(value))}
    return tags, _cover(pictures)


def _id3_text(tags, frame_id: str) -> str | None:
    frames = tags.getall(frame_id)
    if not frames or not frames[0].text:
        return None
    return str(frames[0].text[0])


def _first(tags, names: tuple[str, ...]) -> str | None:
    for name in names:
        values = tags.get(name)
        if values:
            return str(values[0])
    return None


def _vorbis_pictures(audio) -> list[tuple[str, bytes]]:
    """FLAC's picture blocks, or the base64 ones of Ogg's comments."""
    from mutagen.flac import Picture

    pictures = [(picture.mime, picture.data) for picture in getattr(audio, "pictures", [])]
    for encoded in audio.tags.get("metadata_block_picture", []):
        picture = Picture(base64.b64decode(encoded))
        pictures.append((picture.mime, picture.data))
    return pictures


def _cover(pictures: list[tuple[str, bytes]]) -> tuple[str, bytes] | None:
    """The first picture that is a JPEG, PNG or WebP small enough to keep."""
    for _, data in pictures:
        kind = image_type(data)
        if kind is not None and len(data) <= MAX_COVER:
            return kind, data
    return None


def image_type(data: bytes) -> str | None:
    """The media type `data` is, by its first bytes: JPEG, PNG or WebP only."""
    for magic, kind in IMAGE_MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _from_libsndfile(path) -> dict:
    with soundfile.SoundFile(path) as audio:
        texts = {field: getattr(audio, name) for field, name in LIBSNDFILE_NAMES.items()}
    return {field: text for field, value in texts.items() if (text := clean(value))}


def clean(value: str | None) -> str | None:
    """A tag as text to show: control characters out (a tab or a newline
    becomes a space), trimmed, at most MAX_TEXT characters; None if empty."""
    if value is None:
        return None
    text = "".join(" " if char in "\t\r\n" else char for char in str(value)
                   if char in "\t\r\n" or char.isprintable())
    # NFC, as names are: a search typed either way finds it.
    return unicodedata.normalize("NFC", text).strip()[:MAX_TEXT] or None
