"""The `silhouette` command: analyse photos, run the demo, serve the local stack, fetch assets."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from silhouette import analysis
from silhouette.assets import Manifest, fetch_all
from silhouette.client import target
from silhouette.local.stack import DEFAULT_STACK_NAME, PROJECT_ROOT
from silhouette.schema import JobOptions, Stage

console = Console(width=None if sys.stdout.isatty() else 140)  # no wrapping in logs
SAMPLES = PROJECT_ROOT / "samples" / "manifest.json"


@click.group()
def main() -> None:
    """Silhouette: analyse photos of people."""


def _analyse(
    photos: list[Path],
    out: Path,
    endpoint_url: str | None,
    stack_name: str,
    options: JobOptions,
    timeout: float,
) -> list[analysis.PhotoJob]:
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "lambda.log"
    with target(endpoint_url, log_path, stack_name) as where:
        console.print(f"[dim]analysing {len(photos)} photo(s) on the {where}[/dim]")
        submitted = [analysis.submit(photo, options) for photo in photos]
        with Live(_progress(submitted), console=console, transient=True) as live:
            analysis.follow(
                submitted, timeout, on_update=lambda _: live.update(_progress(submitted))
            )
        for job in submitted:
            if job.result is not None and job.result.status.is_terminal:
                analysis.save(job, out)
            console.print(f"{job.photo.name}: {analysis.describe(job)} [{job.seconds:.2f}s]")
    if endpoint_url is None:
        console.print(f"[dim]function logs: {log_path}[/dim]")
    return submitted


def _progress(submitted: list[analysis.PhotoJob]) -> Table:
    table = Table(show_header=False, box=None)
    for job in submitted:
        table.add_row(job.photo.name, analysis.describe(job), f"{job.seconds:.1f}s")
    return table


@main.command()
@click.argument(
    "photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("silhouette-out"),
    show_default=True,
)
@click.option(
    "--endpoint-url", help="AWS endpoint (silhouette serve, LocalStack); default: embedded stack"
)
@click.option("--stack-name", default=DEFAULT_STACK_NAME, show_default=True)
@click.option("--face/--no-face", default=True, help="estimate age and sex")
@click.option(
    "--quality", type=click.Choice(["quality", "fast"]), default="quality", show_default=True
)
@click.option(
    "--timeout", type=float, default=300, show_default=True, help="seconds to wait for all jobs"
)
def analyze(
    photos: tuple[Path, ...],
    out: Path,
    endpoint_url: str | None,
    stack_name: str,
    face: bool,
    quality: str,
    timeout: float,
) -> None:
    """Analyse PHOTOS and write OUT/<photo>/result.json with the artifacts."""
    jobs = _analyse(
        list(photos), out, endpoint_url, stack_name, JobOptions(face=face, quality=quality), timeout
    )
    if any(job.result is None or not job.result.status.is_terminal for job in jobs):
        sys.exit(1)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("silhouette-out/demo"),
    show_default=True,
)
def demo(out: Path) -> None:
    """Analyse the sample photos that packages ship, plus a truncated file, and summarise."""
    photos = fetch_all(SAMPLES)
    truncated = out / "inputs" / "truncated.png"
    truncated.parent.mkdir(parents=True, exist_ok=True)
    astronaut = Manifest.load(SAMPLES).path("astronaut")
    truncated.write_bytes(astronaut.read_bytes()[:1500])  # a damaged photo must be REJECTED
    started = time.monotonic()
    jobs = _analyse([*photos, truncated], out, None, DEFAULT_STACK_NAME, JobOptions(), 600)
    table = Table(
        title=f"Silhouette demo: {len(jobs)} photos in {time.monotonic() - started:.1f}s",
        box=box.SIMPLE,
    )
    stages = [stage.value for stage in Stage if stage != Stage.FINALIZE]
    for column in ("photo", "status", "size", *[f"{s} ms" for s in stages], "total", "reason"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        result = job.result
        assert result is not None
        size = f"{result.image.width}x{result.image.height}" if result.image else "-"
        timings = [str(result.timings_ms.get(stage, "-")) for stage in stages]
        table.add_row(
            job.photo.name,
            result.status.value,
            size,
            *timings,
            f"{job.seconds:.2f}s",
            result.reason or result.error or "",
        )
    console.print(table)
    console.print(f"results in {out}/<photo>/result.json")
    if any(job.result is None or not job.result.status.is_terminal for job in jobs):
        sys.exit(1)


@main.command()
@click.option("--port", type=int, default=4566, show_default=True)
@click.option("--stack-name", default=DEFAULT_STACK_NAME, show_default=True)
@click.option(
    "--log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("silhouette-out/serve-lambda.log"),
    show_default=True,
)
def serve(port: int, stack_name: str, log: Path) -> None:
    """Run the embedded stack as a server on 127.0.0.1 (use it with AWS_ENDPOINT_URL)."""
    from silhouette.local.stack import EmbeddedStack

    with EmbeddedStack(log_path=log, stack_name=stack_name, port=port) as stack:
        console.print(f"Silhouette stack {stack_name!r} on {stack.endpoint_url}")
        for name, value in stack.outputs.items():
            console.print(f"  {name}: {value}")
        console.print(f"function logs: {log}\nCtrl-C to stop")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@main.command()
@click.argument("manifests", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fetch(manifests: tuple[Path, ...]) -> None:
    """Fetch and verify every file of MANIFESTS (default: the sample photos)."""
    for manifest in manifests or (SAMPLES,):
        for path in fetch_all(manifest):
            console.print(f"{Manifest.load(manifest).kind}: {path}")


if __name__ == "__main__":
    main()
