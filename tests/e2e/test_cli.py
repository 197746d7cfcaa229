"""The `silhouette` command as a person runs it: on the embedded stack, and against the API of
`silhouette serve` with --api-url and a key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest

from silhouette.local.stack import free_port
from tests.e2e.helpers import analyze_on_served_stack, served_stack, silhouette_command

pytestmark = pytest.mark.e2e


def silhouette(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        silhouette_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_analyze_writes_results_and_artifacts_per_photo(sample, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    out = tmp_path / "out"

    run = silhouette(
        "analyze", str(sample.path("astronaut")), str(text), str(empty), "--out", str(out)
    )

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("astronaut.png: COMPLETED [") for line in lines), run.stdout
    assert any(
        line.startswith("notes.txt: refused: content_type: Input should be 'image/jpeg'")
        for line in lines
    ), run.stdout
    assert any(line.startswith("empty.jpg: REJECTED: empty file") for line in lines)
    result = json.loads((out / "astronaut" / "result.json").read_text())
    assert result["status"] == "COMPLETED"
    assert result["image"] == {"width": 512, "height": 512, "format": "PNG"}
    assert set(result["timings_ms"]) >= {"ingest", "pose", "segment", "colors", "total"}
    assert (out / "astronaut" / "image.png").read_bytes().startswith(b"\x89PNG")
    for artifact in ("cutout.png", "clothing_mask.png", "person_mask.png", "face_crop.png"):
        assert (out / "astronaut" / artifact).read_bytes().startswith(b"\x89PNG"), artifact
    assert (out / "astronaut" / "overlay.jpg").read_bytes().startswith(b"\xff\xd8")
    assert len(result["person"]["keypoints"]) == 33 and result["colors"]
    assert json.loads((out / "empty" / "result.json").read_text())["reason"].startswith(
        "empty file"
    )
    logs = [json.loads(line) for line in (out / "lambda.log").read_text().splitlines()]
    assert {line.get("correlation_id") for line in logs} >= {result["job_id"]}


def test_serve_runs_the_stack_for_other_clients(sample, tmp_path):
    port, api_port = free_port(), free_port()
    with served_stack(tmp_path / "serve.log", port, api_port) as printed:
        endpoint = printed["endpoint"]
        assert endpoint == f"http://127.0.0.1:{port}"
        assert printed["ApiUrl"] == f"http://127.0.0.1:{api_port}"
        assert printed["Web page"] == f"http://127.0.0.1:{api_port}/"
        run = analyze_on_served_stack(printed, sample.path("zidane"), tmp_path / "out")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "zidane.jpg: COMPLETED" in run.stdout
        # Any AWS client sees the same stack.
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        job_id = json.loads((tmp_path / "out" / "zidane" / "result.json").read_text())["job_id"]
        listed = s3.list_objects_v2(
            Bucket="silhouette-local-photobucket", Prefix=f"results/{job_id}/"
        )
        assert [o["Key"] for o in listed["Contents"]] == [f"results/{job_id}/result.json"]
    assert Path(tmp_path / "serve.log").stat().st_size > 0
