"""Cold-start import time of the CLI and of each function's handler module: a fresh interpreter
imports it, as `silhouette` starts or a Lambda instance inits; the bare interpreter's start is
subtracted. Median of several runs, in seconds. Prints figures, asserts nothing.

    python benchmarks/import_times.py [--runs N] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from silhouette.names import PROJECT_ROOT


def started_in(code: str, path: Path | None, source: Path) -> float:
    """Seconds a fresh interpreter takes to run `code` with `path` first on sys.path."""
    setup = f"import sys; sys.path[:0] = [{str(path)!r}, {str(source)!r}]; " if path else ""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", setup + code], check=True, cwd="/", capture_output=True)
    return time.perf_counter() - started


def import_times(root: Path = PROJECT_ROOT, runs: int = 5) -> dict[str, float]:
    """Seconds to import the CLI and each function's handler module of the checkout `root`,
    beyond a bare interpreter's start, median of `runs`; keyed "CLI", "<name> function"."""
    source = root / "src"
    targets = {
        "CLI": (
            "import silhouette.cli"
            if (source / "silhouette/cli.py").exists()
            else "import silhouette.client.cli",
            root,
        )
    }
    functions = sorted(path.parent for path in (root / "functions").glob("*/app.py"))
    targets |= {f"{path.name} function": ("import app", path) for path in functions}
    bare = statistics.median(started_in("pass", None, source) for _ in range(runs))
    return {
        label: statistics.median(started_in(code, path, source) for _ in range(runs)) - bare
        for label, (code, path) in targets.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the checkout to measure")
    arguments = parser.parse_args()
    times = import_times(arguments.root, arguments.runs)
    print(f"{'import':<20} {'seconds':>8}   ({arguments.root}, median of {arguments.runs})")
    for label, seconds in times.items():
        print(f"{label:<20} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
