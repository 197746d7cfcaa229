"""The `silhouette` command: analyse photos, run the demo, serve the local stack, fetch assets."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import click
from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from silhouette.assets import Manifest, fetch_all
from silhouette.client import photo_jobs
from silhouette.client.api_client import ApiClient, ApiError
from silhouette.client.event_follow import events
from silhouette.client.targets import api_target
from silhouette.names import DEFAULT_STACK_NAME, PROJECT_ROOT
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
) -> list[photo_jobs.PhotoJob]:
    """Submit, follow and save every photo, printing one line per photo. Ctrl-C leaves the
    stack's `with` (so an embedded stack stops) and exits 130."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "lambda.log"
    jobs: list[photo_jobs.PhotoJob] = []
    try:
        with api_target(api_url, api_key, log_path) as (api, where):
            console.print(f"[dim]analysing {len(photos)} photo(s) on the {where}[/dim]")
            with Live(
                console=console,
                transient=True,
                get_renderable=lambda: _progress(jobs, len(photos)),
            ):
                for job in photo_jobs.submit_all(api, photos, options):
                    jobs.append(job)  # one at a time: the progress shows each
                _follow(api, jobs, timeout)
            for job in jobs:
                if job.terminal:
                    photo_jobs.save(api, job, out)
                line = f"{job.photo.name}: {photo_jobs.describe(job)} [{job.seconds:.2f}s]"
                console.print(escape(line))
    except KeyboardInterrupt:
        running = f"; their jobs keep running on {api_url}" if api_url and jobs else ""
        console.print(
            f"interrupted after submitting {len(jobs)} of {len(photos)} photo(s){running}"
        )
        sys.exit(130)  # 128 + SIGINT, as shells report it
    if api_url is None:
        console.print(f"[dim]function logs: {log_path}[/dim]")
    return jobs


def _follow(api: ApiClient, jobs: list[photo_jobs.PhotoJob], timeout: float) -> None:
    """Follow the jobs; if the API stays unavailable, stop and keep what is finished."""
    try:
        photo_jobs.follow(api, jobs, timeout)
    except ApiError as error:
        console.print(escape(f"stopped following the jobs: {error.message}"), style="red")


MANY_PHOTOS = 20  # more than this get counts per status instead of a live line each
STATE_STYLES = {
    "QUEUED": "dim",
    "PROCESSING": "cyan",
    "COMPLETED": "green",
    "REJECTED": "yellow",
    "FAILED": "red",
    "EXPIRED": "red",
}


def _progress(jobs: list[photo_jobs.PhotoJob], total: int) -> RenderableType:
    if total > MANY_PHOTOS:
        return _counts(jobs, total)
    table = Table(show_header=False, box=None)
    for job in jobs:
        table.add_row(
            escape(job.photo.name), escape(photo_jobs.describe(job)), f"{job.seconds:.1f}s"
        )
    return table


def _counts(jobs: list[photo_jobs.PhotoJob], total: int) -> RenderableType:
    """A bar of the photos done and a count per job status (refusals only when there are any)."""
    states = Counter(job.state for job in jobs)
    done = sum(job.done for job in jobs)
    counts = [f"[{style}]{state} {states[state]}[/]" for state, style in STATE_STYLES.items()]
    counts += [
        f"[red]{state} {states[state]}[/]"
        for state in ("refused", "not submitted")
        if states[state]
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_row(
        ProgressBar(total=total, completed=done, width=30),
        f"{done}/{total} done",
        f"submitted {len(jobs)}/{total}",
        "  ".join(counts),
    )
    return grid


def _exit_if_failed(jobs: list[photo_jobs.PhotoJob]) -> None:
    """Name each photo that failed (with the ids to find its logs) and exit 1 if any did."""
    failures = [(job, why) for job in jobs if (why := photo_jobs.failure(job)) is not None]
    if not failures:
        return
    console.print(f"{len(failures)} of {len(jobs)} photo(s) failed:", style="red")
    for job, why in failures:
        job_id = f", job {job.job_id}" if job.job_id else ""
        console.print(escape(f"  {job.photo.name}: {why} (request {job.request_id}{job_id})"))
    sys.exit(1)


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
    "--timeout",
    type=float,
    default=7200,
    show_default=True,
    help="seconds to wait for the jobs once submitted (the pipeline ends every job within 2 hours)",
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
    _exit_if_failed(jobs)


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
            result.get("reason") or result.get("error") or _unsaved(job),
        )
    console.print(table)
    console.print(f"results in {out}/<photo>/result.json")
    _exit_if_failed(jobs)


def _unsaved(job: photo_jobs.PhotoJob) -> str:
    """What the demo table says of a photo without a result: why there is none."""
    return "" if job.result else photo_jobs.describe(job)


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
        provisioned=True,
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
