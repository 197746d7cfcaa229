"""Model files: the manifest in layers/models/ names them; each is fetched and verified once
(by `make setup` locally, at image build time in Lambda) and loaded once per container."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from silhouette.assets import Manifest
from silhouette.settings import get_settings


@cache
def manifest() -> Manifest:
    return Manifest.load(get_settings().model_manifest)


def model_path(name: str) -> Path:
    """The verified local file of model `name` (see layers/models/manifest.json)."""
    return manifest().path(name)


def model_version(name: str) -> str:
    """What the record's `models` field says about a model: its version, file and package."""
    asset = next(a for a in manifest().assets if a.name == name)
    return f"{asset.version}: {asset.file} ({asset.source.package} {asset.source.version})"
