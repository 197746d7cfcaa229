"""Compiled numba kernels, paid for once in setup (or the image build), never inside a job.

rembg imports pymatting, whose numba kernels compile at import time: 60-75 s on 2 cores. numba
caches them only in a directory it can write to, so on a read-only package tree with no writable
HOME (a Lambda container image) the import fails outright ("cannot cache function ... no locator
available"). Here numba's cache lives in `<SILHOUETTE_CACHE>/numba`, compiled for a generic x86-64
CPU so the cache stays valid on another machine (CI runners, Lambda hosts). Where that directory
is read-only, the compiled kernels are copied to the temp directory (3 MB, once per instance).

`python -m silhouette.vision.kernels` compiles them (setup and the Dockerfiles run it)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from silhouette.assets import CACHE_ROOT

COMPILED_KERNELS = CACHE_ROOT / "numba"


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def use_compiled_kernels() -> Path:
    """Point numba at the compiled kernels; call before rembg (or numba) is first imported.
    Returns the cache directory numba will use."""
    cache = COMPILED_KERNELS
    if not _writable(cache):
        copy = Path(tempfile.gettempdir()) / "silhouette-numba"
        if not copy.exists() and cache.is_dir():
            shutil.copytree(cache, copy)
        cache = copy
    # numba reads these when it is imported, and again before each compilation.
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    os.environ["NUMBA_CPU_NAME"] = "generic"
    return cache


def compile_kernels() -> float:
    """Compile (or load, when already compiled) every kernel rembg imports; returns seconds."""
    use_compiled_kernels()
    started = perf_counter()
    import rembg  # noqa: F401  (the import is the compilation)

    return perf_counter() - started


if __name__ == "__main__":
    seconds = compile_kernels()
    print(f"numba kernels ready in {COMPILED_KERNELS} ({seconds:.0f}s)", file=sys.stderr)
