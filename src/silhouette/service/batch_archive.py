"""Safe reading of a ZIP of photos uploaded as one batch.

A batch ZIP comes from a stranger, so nothing in it is trusted: not its names (path traversal),
not its declared sizes (zip bombs), not its file extensions (nested archives, non-images). It
is read into memory only, entry by entry, and nothing is ever written to disk.

The whole archive is rejected (`RejectedInput`) when it cannot be read at all or is too big
to be worth reading; a single bad entry is yielded as a rejected `ArchiveItem` with a reason a
person can act on, so one stray file does not sink the batch. Directories, macOS resource
forks (`__MACOSX/`) and hidden files are not photos anyone meant to send and are skipped."""

from __future__ import annotations

import lzma
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from silhouette.errors import RejectedInput

_MB = 1024 * 1024
_CHUNK = 64 * 1024  # bytes inflated at a time; also enough to sniff any magic below
_ENCRYPTED_FLAGS = 0x0001 | 0x0040  # traditional and strong encryption
_DRIVE = re.compile(r"^[A-Za-z]:")
_ARCHIVE_EXTENSIONS = (
    ".zip",
    ".zipx",
    ".tar",
    ".gz",
    ".tgz",
    ".bz2",
    ".tbz2",
    ".xz",
    ".txz",
    ".zst",
    ".7z",
    ".rar",
)
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",  # zip
    b"PK\x05\x06",  # empty zip
    b"PK\x07\x08",  # spanned zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"7z\xbc\xaf\x27\x1c",  # 7z
    b"Rar!\x1a\x07",  # rar 4 and 5
)
_TAR_MAGIC_OFFSET = 257  # "ustar" in a POSIX tar header
# ISO base media brands that mean a still image (HEIF/HEIC, AVIF), not a video.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
# BMP info-header sizes (core, v2, v3, v4, v5 and OS/2 variants).
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# What a damaged or inconsistent entry raises while it is opened or inflated (bz2: OSError).
_DAMAGE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


@dataclass(frozen=True)
class ArchiveLimits:
    """How much a batch may hold; sizes are uncompressed bytes, the ratio is per entry."""

    max_entries: int = 1000
    max_entry_bytes: int = 50 * _MB
    max_total_bytes: int = 2 * 1024 * _MB
    max_ratio: int = 100


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class ArchiveItem:
    """One entry of the batch: its bytes, or why it was refused (exactly one of the two).

    `name` is the entry's path inside the archive, with control characters escaped so it can
    be shown or logged as is; it is never safe to use as a filesystem path."""

    name: str
    data: bytes | None = None
    rejection: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.rejection is None):
            raise ValueError("an ArchiveItem has either data or a rejection")


def read_archive(
    source: BinaryIO | Path, limits: ArchiveLimits = DEFAULT_LIMITS
) -> Iterator[ArchiveItem]:
    """The entries of the ZIP `source` (a seekable binary stream or a path), in archive order.

    Raises `RejectedInput` at once when the archive is not a valid ZIP, is encrypted, has more
    than `max_entries` entries (directories and skipped files included: each costs parsing) or
    declares more than `max_total_bytes` in all; and while iterating, if the bytes actually
    inflated exceed `max_total_bytes`, since declared sizes can lie. A stream passed in is
    left open; exhaust or close the iterator to release a file opened from a path."""
    with ExitStack() as cleanup:
        stream = cleanup.enter_context(source.open("rb")) if isinstance(source, Path) else source
        archive = cleanup.enter_context(_open(stream))
        _check_whole(archive.infolist(), limits)
        return _items(archive, cleanup.pop_all(), limits)


def _open(stream: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise RejectedInput("not a valid ZIP archive") from error


def _check_whole(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if any(info.flag_bits & _ENCRYPTED_FLAGS for info in infos):
        raise RejectedInput("the archive is encrypted: upload it without a password")
    if len(infos) > limits.max_entries:
        raise RejectedInput(
            f"too many files in the archive: {len(infos)} (limit {limits.max_entries})"
        )
    declared = _declared_total(infos)
    if declared > limits.max_total_bytes:
        raise RejectedInput(
            f"archive too large: {_size(declared)} uncompressed "
            f"(limit {_size(limits.max_total_bytes)})"
        )


def _declared_total(infos: list[zipfile.ZipInfo]) -> int:
    """What the central directory claims the entries inflate to: a cheap first check only."""
    return sum(info.file_size for info in infos)


class _Inflated:
    """Bytes actually inflated across the archive, rejected entries included."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0

    def add(self, size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise RejectedInput(
                f"archive too large: more than {_size(self.limit)} once uncompressed"
            )


def _items(
    archive: zipfile.ZipFile, cleanup: ExitStack, limits: ArchiveLimits
) -> Iterator[ArchiveItem]:
    inflated = _Inflated(limits.max_total_bytes)
    with cleanup:
        for info in archive.infolist():
            raw = info.orig_filename  # before zipfile cuts it at a NUL byte
            if raw.endswith("/"):
                continue  # a directory
            name = _display(raw)
            problem = _path_problem(raw)
            if problem:
                yield ArchiveItem(name, rejection=f"unsafe path: {problem}")
                continue
            if _skipped(raw):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                yield ArchiveItem(name, rejection="symbolic link")
                continue
            if raw.lower().endswith(_ARCHIVE_EXTENSIONS):
                yield ArchiveItem(name, rejection="nested archive")
                continue
            outcome = _read_entry(archive, info, limits, inflated)
            if isinstance(outcome, bytes):
                yield ArchiveItem(name, data=outcome)
            else:
                yield ArchiveItem(name, rejection=outcome)


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, inflated: _Inflated
) -> bytes | str:
    """The entry's bytes, or the reason it is refused, inflating no more than the limits allow.

    The declared uncompressed size is not consulted: output is counted as it is inflated. The
    ratio is taken against the declared compressed size, which is the most input zipfile will
    consume for the entry, so it can only understate the real ratio of what was read."""
    compressed = max(info.compress_size, 1)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                inflated.add(len(chunk))
                if size > limits.max_entry_bytes:
                    return f"entry larger than {_size(limits.max_entry_bytes)}"
                if size > limits.max_ratio * compressed:
                    return f"suspicious compression ratio (more than {limits.max_ratio}:1)"
                if not chunks and (kind := _not_a_photo(chunk)):
                    return kind  # known from the first bytes: inflate no further
                chunks.append(chunk)
    except NotImplementedError:
        return "unsupported compression method"
    except _DAMAGE:
        return "damaged entry"  # not the library's wording, which changes between versions
    if not chunks:
        return "empty file"
    return b"".join(chunks)


def _not_a_photo(head: bytes) -> str | None:
    """Why bytes starting with `head` are refused, or None for a photo."""
    if head.startswith(_ARCHIVE_MAGIC) or head[_TAR_MAGIC_OFFSET:].startswith(b"ustar"):
        return "nested archive"
    return None if _is_image(head) else "not an image"


def _is_image(head: bytes) -> bool:
    """Whether `head` starts like a JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC or AVIF file."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")):
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return True
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):  # TIFF, BigTIFF
        return True
    if head.startswith(b"BM") and len(head) >= 18:
        return int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    if head[4:8] == b"ftyp":
        box = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box - 3, 4)}
        return bool(brands & _IMAGE_BRANDS)
    return False


def _path_problem(name: str) -> str | None:
    """What makes `name` unsafe to treat as a relative path, or None."""
    if not name:
        return "empty name"
    if any(_invisible(c) for c in name):
        return "control character in name"
    if name.startswith(("/", "\\")):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    if ".." in re.split(r"[/\\]", name):
        return "parent-directory component"
    if "\\" in name:
        return "backslash in name"
    return None


def _skipped(name: str) -> bool:
    """macOS resource forks and hidden files ('.' and empty components are harmless)."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def _invisible(char: str) -> bool:
    """Control, format (e.g. right-to-left override), unassigned and line/paragraph marks."""
    return unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")


def _display(name: str) -> str:
    return "".join(c.encode("unicode_escape").decode() if _invisible(c) else c for c in name)


def _size(size: int) -> str:
    if size >= 1024 * _MB and size % (1024 * _MB) == 0:
        return f"{size // (1024 * _MB)} GB"
    if size % _MB == 0:
        return f"{size // _MB} MB"
    return f"{size / _MB:.1f} MB" if size >= _MB else f"{size:,} bytes"
