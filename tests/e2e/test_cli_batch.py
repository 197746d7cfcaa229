"""`silhouette batch` as a person runs it: a ZIP on the embedded stack the command starts; a
CSV of URLs, a folder and an interrupted batch against the test stack's API (--api-url)."""

from __future__ import annotations

import csv
import functools
import json
import re
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from silhouette.client import cli
from silhouette.client.api_client import ApiClient
from tests.conftest import API_KEYS
from tests.e2e.helpers import silhouette_command

pytestmark = pytest.mark.e2e

KEY = next(iter(API_KEYS))
FAST = ("--quality", "fast", "--no-face")


def batch_on(stack: Any, *args: str) -> Result:
    """`silhouette batch` in this process, against the test stack's API."""
    api = ("--api-url", stack.api_url, "--api-key", KEY)
    return CliRunner().invoke(cli.main, ["batch", *args, *api])


def report_rows(out: Path) -> dict[str, dict[str, str]]:
    [report] = out.glob("batch-*-report.csv")
    with report.open(newline="") as file:
        return {row["item"]: row for row in csv.DictReader(file)}


def statuses(rows: dict[str, dict[str, str]]) -> dict[str, str]:
    return {item: row["status"] for item, row in rows.items()}


def zip_of(path: Path, photos: list[Path]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for photo in photos:
            archive.write(photo, photo.name)
    return path


def test_a_zip_runs_on_the_embedded_stack_and_lands_in_a_folder_named_after_the_batch(
    sample, tmp_path
):
    archive = zip_of(
        tmp_path / "shoot.zip", [sample.path(n) for n in ("astronaut", "zidane", "chelsea")]
    )

    run = subprocess.run(
        silhouette_command("batch", str(archive), *FAST),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    batch_id = re.search(r"batch ([0-9a-f]{32}): COMPLETED", run.stdout)[1]
    out = tmp_path / f"batch-{batch_id[:8]}"  # the default --out
    rows = report_rows(out)
    assert statuses(rows) == {
        "astronaut.png": "COMPLETED",
        "zidane.jpg": "COMPLETED",
        "chelsea.png": "REJECTED",
    }
    assert rows["chelsea.png"]["reason"] == "no person detected"
    assert (out / rows["astronaut.png"]["cutout_file"]).read_bytes().startswith(b"\x89PNG")
    result = json.loads((out / rows["zidane.jpg"]["result_file"]).read_text())
    assert (result["job_id"], result["status"]) == (rows["zidane.jpg"]["job_id"], "COMPLETED")
    with zipfile.ZipFile(out / f"batch-{batch_id[:8]}-results.zip") as results:
        assert all((out / name).is_file() for name in results.namelist())  # all extracted
    assert f"report: {out.name}/batch-{batch_id[:8]}-report.csv" in run.stdout


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def photo_server(sample, tmp_path) -> Iterator[str]:
    """The URL of a folder of sample photos served from 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    for name in ("zidane", "chelsea"):
        shutil.copy(sample.path(name), served)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_csv_of_urls_on_an_api_ends_with_a_report_row_per_url(stack, photo_server, tmp_path):
    urls = tmp_path / "urls.csv"
    urls.write_text(
        "id,image_url\n"
        f"p1,{photo_server}/zidane.jpg\n"
        f"p2,{photo_server}/chelsea.png\n"
        f"p3,{photo_server}/gone.jpg\n"
    )
    out = tmp_path / "out"

    run = batch_on(stack, str(urls), "--out", str(out), *FAST)

    assert run.exit_code == 0, run.output
    rows = report_rows(out)
    assert statuses(rows) == {"p1": "COMPLETED", "p2": "REJECTED", "p3": "REJECTED"}
    assert rows["p2"]["reason"] == "no person detected"
    assert "404" in rows["p3"]["reason"]
    assert (out / rows["p1"]["cutout_file"]).read_bytes().startswith(b"\x89PNG")
    assert "COMPLETED 1  REJECTED 2" in run.output


def test_a_folder_uploads_its_own_photos_and_ends_with_a_row_per_photo(stack, sample, tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for name in ("astronaut", "chelsea"):
        shutil.copy(sample.path(name), folder)
    shutil.copy(sample.path("zidane"), folder / ".zidane.jpg")  # hidden: not sent
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"

    run = batch_on(stack, str(folder), "--out", str(out), *FAST)

    assert run.exit_code == 0, run.output
    rows = report_rows(out)
    assert statuses(rows) == {"astronaut.png": "COMPLETED", "chelsea.png": "REJECTED"}
    assert (out / rows["astronaut.png"]["cutout_file"]).read_bytes().startswith(b"\x89PNG")


def test_a_batch_refused_as_a_whole_exits_1_with_its_reason(stack, tmp_path):
    not_a_zip = tmp_path / "shoot.zip"
    not_a_zip.write_bytes(b"PK\x03\x04 and nothing after it")

    run = batch_on(stack, str(not_a_zip), "--out", str(tmp_path / "out"))

    assert run.exit_code == 1, run.output
    assert "the batch is REJECTED: not a valid ZIP archive" in run.output
    assert "no report: the batch has no items" in run.output


def test_ctrl_c_leaves_the_batch_running_and_watch_follows_it_to_its_end(
    stack, sample, tmp_path, monkeypatch
):
    archive = zip_of(tmp_path / "shoot.zip", [sample.path("zidane"), sample.path("chelsea")])
    out = tmp_path / "out"
    sent: list[str] = []
    send, poll = ApiClient._send, ApiClient.batch

    def recorded(self: ApiClient, session: Any, method: str, url: str, **kwargs: Any) -> Any:
        sent.append(method)
        return send(self, session, method, url, **kwargs)

    def poll_then_ctrl_c(self: ApiClient, batch_id: str) -> dict[str, Any]:
        poll(self, batch_id)
        raise KeyboardInterrupt

    monkeypatch.setattr(ApiClient, "_send", recorded)
    monkeypatch.setattr(ApiClient, "batch", poll_then_ctrl_c)

    interrupted = batch_on(stack, str(archive), "--out", str(out), *FAST)

    assert interrupted.exit_code == 130, interrupted.output
    batch_id = re.search(r"batch ([0-9a-f]{32}) keeps running", interrupted.output)[1]
    resume = f"silhouette batch --watch {batch_id} --api-url {stack.api_url} --api-key {KEY}"
    assert f"follow it again with: {resume} --out {out}" in interrupted.output
    assert sent == ["POST", "POST", "GET"]  # made, uploaded, polled once: nothing cancelled
    assert not out.exists()

    monkeypatch.undo()
    resumed = batch_on(stack, "--watch", batch_id, "--out", str(out))

    assert resumed.exit_code == 0, resumed.output
    assert statuses(report_rows(out)) == {"zidane.jpg": "COMPLETED", "chelsea.png": "REJECTED"}
