"""Cold starts: what a client or a function loads when it is imported. Each is imported in a
fresh interpreter, as the CLI starts or a Lambda instance inits, and must load none of the heavy
libraries it does not use (a one-line name once pulled in MediaPipe, rembg and moto)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from silhouette.names import PROJECT_ROOT

MODELS = {"mediapipe", "rembg", "onnxruntime", "numba"}
HEAVY = MODELS | {"cv2", "sklearn", "moto", "matplotlib", "fpdf"}
FUNCTIONS = PROJECT_ROOT / "functions"


def loaded(module: str, path: str | None = None) -> set[str]:
    """The top-level packages in sys.modules after importing `module` (from `path`)."""
    setup = f"sys.path.insert(0, {path!r})\n" if path else ""
    code = (
        f"import json, sys\n{setup}import {module}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return set(json.loads(output.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("what", "module", "path", "allowed"),
    [
        ("the CLI", "silhouette.client.cli", None, set()),
        ("the API function", "app", "api", set()),
        ("the starter", "starter", "ingest", set()),
        ("the ingest function", "app", "ingest", set()),
        ("the finalize function", "app", "finalize", set()),
        ("the sweeper function", "app", "sweeper", set()),
        ("the tenant-data function", "app", "tenant_data", set()),
        ("the colors function", "app", "colors", {"cv2", "sklearn"}),
        ("the segment function", "app", "segment", {"cv2", "sklearn", "onnxruntime"}),
        ("the overlay function", "app", "overlay", {"cv2"}),
    ],
)
def test_importing_loads_no_heavy_library_it_does_not_use(what, module, path, allowed):
    directory = str(FUNCTIONS / path) if path else None

    heavy = loaded(module, directory) & HEAVY

    assert heavy <= allowed, f"{what} loads {sorted(heavy - allowed)}"
