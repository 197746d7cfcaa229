"""What a finished batch hands back: a CSV report with one row per item, and a ZIP of results.

The report is opened in spreadsheets, and much of its text comes from the client (ids, names,
paths, their own extra columns), so any client text a spreadsheet would run as a formula is
neutralised. The ZIP can be far larger than a function's memory or disk, so it is streamed
straight to S3: entries are read one at a time and the archive leaves in multipart-upload parts
as they fill."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from botocore.exceptions import ClientError

_MB = 1024 * 1024
MIN_PART_SIZE = 5 * _MB  # S3's least size for every part of a multipart upload but the last
DEFAULT_PART_SIZE = 8 * _MB
_ZIP_TYPE = "application/zip"
# Already compressed: deflating them again costs time and saves nothing.
_STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_DRIVE = re.compile(r"^[A-Za-z]:")
# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ReportRow:
    """One item of the batch and what became of it; None where there is nothing to say.

    `item` is the client's id for it (the `id` column of their CSV, or the ZIP entry name),
    `source` the ZIP entry path or image URL, `reason` why it was rejected or how its job
    failed, `top_colours` e.g. "navy 41%; white 22%", `age_range` e.g. "25-32"; the `*_file`
    columns are paths inside the batch's results archive (links that do not expire). `extra` holds
    the other columns of the client's CSV, as (name, value) pairs, to carry through."""

    item: str
    source: str
    job_id: str
    status: str
    reason: str | None
    person_confidence: float | None
    top_colours: str | None
    age_range: str | None
    sex: str | None
    result_file: str | None
    cutout_file: str | None
    overlay_file: str | None
    extra: tuple[tuple[str, str], ...] = ()


_COLUMNS = tuple(field.name for field in fields(ReportRow) if field.name != "extra")
_CLIENT_COLUMNS = frozenset({"item", "source", "reason"})  # reason can quote client text


def report_csv(rows: Iterable[ReportRow]) -> bytes:
    """The report as UTF-8 CSV: a header, then a row per item in the order given.

    The fixed columns come first, then every extra column in the order first seen across the
    rows; a row without one of them leaves it empty."""
    rows = list(rows)  # twice over: the header needs every row's extra column names
    extra_names = list(dict.fromkeys(name for row in rows for name, _ in row.extra))
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow([*_COLUMNS, *map(_neutralised, extra_names)])
    for row in rows:
        extras = dict(row.extra)
        writer.writerow(
            [*_fixed_cells(row), *(_neutralised(extras.get(name, "")) for name in extra_names)]
        )
    return output.getvalue().encode("utf-8")


def _fixed_cells(row: ReportRow) -> list[str]:
    cells = []
    for column in _COLUMNS:
        value = getattr(row, column)
        cell = "" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        cells.append(_neutralised(cell) if column in _CLIENT_COLUMNS else cell)
    return cells


def _neutralised(text: str) -> str:
    """`text` as a spreadsheet will show it rather than run it."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@dataclass(frozen=True)
class ZipEntry:
    """A file for the results ZIP: its path inside the archive, and how to get its bytes
    (called only when the entry is written)."""

    name: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class ZipSummary:
    """What was uploaded: entries written, the archive's size in bytes, the multipart parts
    (0 for a single upload) and the names of entries whose source no longer existed."""

    entries: int
    bytes: int
    parts: int
    skipped: tuple[str, ...] = ()


def write_zip_to_s3(
    s3: Any,
    bucket: str,
    key: str,
    entries: Iterable[ZipEntry],
    part_size: int = DEFAULT_PART_SIZE,
) -> ZipSummary:
    """Write `entries` as a ZIP to `bucket`/`key`, holding no more than one entry and one part.

    An archive no bigger than `part_size` is sent with one `put_object`. An entry whose `read`
    finds nothing (`FileNotFoundError`, S3 `NoSuchKey`) is left out and listed as skipped; any
    other error, an unsafe or repeated name included, aborts the upload and is raised, leaving
    no object behind."""
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
    upload = _PartUpload(s3, bucket, key, part_size)
    try:
        # Not `with`: on an error it would write the central directory, and maybe a part, first.
        archive = zipfile.ZipFile(upload, "w")
        written, skipped = _write_entries(archive, entries)
        archive.close()
        upload.finish()
    except BaseException:  # interrupted too: an upload left pending is billed until swept
        upload.abort()
        raise
    return ZipSummary(written, upload.size, upload.parts, skipped)


def _write_entries(
    archive: zipfile.ZipFile, entries: Iterable[ZipEntry]
) -> tuple[int, tuple[str, ...]]:
    """The number of entries written and the names of those skipped."""
    seen: set[str] = set()
    skipped: list[str] = []
    for entry in entries:
        if problem := _name_problem(entry.name):
            raise ValueError(f"unsafe entry name {entry.name!r}: {problem}")
        if entry.name in seen:
            raise ValueError(f"duplicate entry name {entry.name!r}")
        seen.add(entry.name)
        data = _read(entry)
        if data is None:
            skipped.append(entry.name)
            continue
        stored = entry.name.lower().endswith(_STORED_SUFFIXES)
        compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        archive.writestr(entry.name, data, compress_type=compression)
    return len(seen) - len(skipped), tuple(skipped)


def _read(entry: ZipEntry) -> bytes | None:
    """The entry's bytes, or None when its source was deleted meanwhile."""
    try:
        return entry.read()
    except FileNotFoundError:
        return None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchKey":
            return None
        raise


def _name_problem(name: str) -> str | None:
    """What makes `name` unsafe as a file's path inside an archive, or None."""
    if not name or name.endswith("/"):
        return "not a file name"
    if "\x00" in name:
        return "NUL character"  # zipfile would silently cut the name there
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "parent-directory component"
    return None


class _PartUpload:
    """A write-only, non-seekable file whose bytes go to S3 as the parts of a multipart upload,
    started when the first part fills; what is left at the end is the last part, or the whole
    object when no part ever filled."""

    def __init__(self, s3: Any, bucket: str, key: str, part_size: int) -> None:
        self._s3 = s3
        self._target = {"Bucket": bucket, "Key": key}
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._etags: list[str] = []
        self.size = 0

    @property
    def parts(self) -> int:
        return len(self._etags)

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.size += len(data)
        # Strictly more than a part: the bytes left for `finish` are never none.
        while len(self._buffer) > self._part_size:
            self._send(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: a part goes out when it fills, the rest on `finish`."""

    def finish(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(**self._target, Body=bytes(self._buffer), ContentType=_ZIP_TYPE)
            return
        self._send(bytes(self._buffer))
        parts = [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(self._etags, 1)]
        self._s3.complete_multipart_upload(
            **self._target, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(**self._target, UploadId=self._upload_id)

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            started = self._s3.create_multipart_upload(**self._target, ContentType=_ZIP_TYPE)
            self._upload_id = started["UploadId"]
        response = self._s3.upload_part(
            **self._target, UploadId=self._upload_id, PartNumber=self.parts + 1, Body=part
        )
        self._etags.append(response["ETag"])
