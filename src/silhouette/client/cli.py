"""The `silhouette` command: analyse photos or a batch, run the demo, serve the local stack,
fetch assets."""

from __future__ import annotations

import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from silhouette.assets import Manifest, fetch_all
from silhouette.client import batch_command, photo_jobs
from silhouette.client.api_client import ApiClient, ApiError, ApiUnavailable
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
    counts = [_status_counts(states)]
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


def _status_counts(counts: Mapping[str, int]) -> str:
    """A count per job status, in the order jobs go through them, each in its colour."""
    return "  ".join(
        f"[{style}]{status} {counts.get(status, 0)}[/]" for status, style in STATE_STYLES.items()
    )


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


def _options(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, in the order given (for the commands that share
    them)."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


api_options = _options(
    click.option(
        "--api-url",
        envvar="SILHOUETTE_API_URL",
        help="the API of `silhouette serve` or a deployed stack; default: an embedded stack",
    ),
    click.option("--api-key", envvar="SILHOUETTE_API_KEY", help="API key for --api-url"),
)
job_options = _options(
    click.option("--face/--no-face", default=True, help="estimate age and sex"),
    click.option(
        "--quality", type=click.Choice(["quality", "fast"]), default="quality", show_default=True
    ),
)


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
@api_options
@job_options
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
@click.argument(
    "source",
    metavar="[ZIP|CSV|FOLDER]",
    required=False,
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--watch",
    "batch_id",
    metavar="BATCH_ID",
    help="follow a batch made before, on --api-url, instead of making one",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="where the report and the results go  [default: ./batch-<first 8 of its id>]",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="at most this many items at once (the service caps it)",
)
@api_options
@job_options
def batch(
    source: Path | None,
    batch_id: str | None,
    out: Path | None,
    concurrency: int | None,
    api_url: str | None,
    api_key: str | None,
    face: bool,
    quality: str,
) -> None:
    """Analyse a ZIP of photos, a CSV of photo URLs (columns id,image_url) or a folder's
    image files (not its subfolders', nor hidden files) as one batch; follow it, then save its
    report CSV and results ZIP in OUT and extract the ZIP there.

    Ctrl-C leaves the batch running on --api-url; `silhouette batch --watch BATCH_ID
    --api-url URL` follows it again. Exits 1 if the batch is REJECTED or FAILED or an item
    FAILED (a REJECTED item is an answer)."""
    if (source is None) == (batch_id is None):
        raise click.UsageError("give a ZIP, a CSV or a folder, or --watch BATCH_ID")
    if batch_id is not None and api_url is None:
        raise click.UsageError(
            "--watch needs --api-url: an embedded stack's batches end with the command"
        )
    new = None
    if source is not None:
        options = JobOptions(face=face, quality=quality)
        try:
            new = batch_command.new_batch(source, options, concurrency)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="ZIP|CSV|FOLDER") from None
    run = batch_command.BatchRun(batch_id=batch_id)
    _run_batch(run, new, out, api_url, api_key)
    _summarise_batch(run)
    _exit_if_batch_failed(run)


def _run_batch(
    run: batch_command.BatchRun,
    new: batch_command.NewBatch | None,
    out: Path | None,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Make (unless `run` names one) and follow the batch with a live progress display, and
    save its outputs. Ctrl-C leaves the batch running on the API (an embedded stack stops, and
    its batch with it) and exits 130."""
    log_path = out / "lambda.log" if out else Path("silhouette-out/batch-lambda.log")
    try:
        with api_target(api_url, api_key, log_path) as (api, where):
            console.print(f"[dim]batch via {escape(where)}[/dim]")
            with Live(console=console, transient=True, get_renderable=lambda: _batch_progress(run)):
                batch_command.run_batch(api, run, new, out)
    except KeyboardInterrupt:
        console.print(escape(_interrupted(run, api_url)), soft_wrap=True)  # a command to copy
        sys.exit(130)  # 128 + SIGINT, as shells report it
    except ApiError as error:
        console.print(escape(f"stopped: {error.message}"), style="red")
        if isinstance(error, ApiUnavailable) and api_url is not None and run.batch_id:
            # The batch goes on; once the API answers again, it can be followed again.
            resume = f"follow it again with: {_watch_command(run.batch_id)}"
            console.print(escape(resume), soft_wrap=True)
        sys.exit(1)
    if api_url is None:
        console.print(f"[dim]function logs: {log_path}[/dim]")


def _batch_progress(run: batch_command.BatchRun) -> RenderableType:
    """The files uploaded while uploading; then a bar of the items done, the rate and the time
    left, and below it the items' count per status."""
    grid = Table.grid(padding=(0, 2))
    if run.uploads_done < run.uploads_total:
        grid.add_row(
            ProgressBar(total=run.uploads_total, completed=run.uploads_done, width=30),
            f"uploaded {run.uploads_done}/{run.uploads_total} file(s)",
        )
        return grid
    state = run.state
    if state is None:
        return "asking for the batch"
    total = "?" if state.total is None else str(state.total)
    grid.add_row(
        ProgressBar(total=state.total, completed=state.done, width=30),  # no total: it pulses
        f"{state.done}/{total} done",
        state.status,
        _rate(run.throughput, state),
    )
    return Group(grid, Text.from_markup(_status_counts(state.counts)))


def _rate(throughput: batch_command.Throughput, state: batch_command.BatchState) -> str:
    per_minute = throughput.per_minute()
    if per_minute is None:
        return ""
    remaining = state.total - state.done if state.total is not None else 0
    eta = throughput.eta_seconds(remaining) if remaining > 0 else None
    left = f", {timedelta(seconds=round(eta))} left" if eta is not None else ""
    return f"{per_minute:.1f} items/min{left}"


def _interrupted(run: batch_command.BatchRun, api_url: str | None) -> str:
    if run.batch_id is None:
        return "interrupted before the batch was made"
    if run.uploads_done < run.uploads_total:
        return (
            f"interrupted after uploading {run.uploads_done} of {run.uploads_total} file(s): "
            f"batch {run.batch_id} waits for the others"
        )
    if api_url is None:
        return f"interrupted: the embedded stack stopped, and batch {run.batch_id} with it"
    return (
        f"interrupted: batch {run.batch_id} keeps running on {api_url}\n"
        f"follow it again with: {_watch_command(run.batch_id)}"
    )


def _watch_command(batch_id: str) -> str:
    """The command that follows the batch again, with the options given on this command line
    (those from the environment will be there again)."""
    context = click.get_current_context()
    words = ["silhouette", "batch", "--watch", batch_id]
    for name in ("api_url", "api_key", "out"):
        if context.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            words += [f"--{name.replace('_', '-')}", str(context.params[name])]
    return shlex.join(words)


def _summarise_batch(run: batch_command.BatchRun) -> None:
    state, outputs = run.state, run.outputs
    assert state is not None and run.batch_id is not None
    if run.not_uploaded:
        console.print(escape(f"batch {run.batch_id} has not started: it waits for its files"))
        return
    reason = f" ({state.reason})" if state.reason else ""
    console.print(
        f"batch {run.batch_id}: {state.status}{escape(reason)}, {state.total or 0} item(s)"
    )
    console.print(f"  {_status_counts(state.counts)}")
    if not state.total:
        console.print("  no report: the batch has no items")
        return
    if outputs is None or outputs.report is None:
        return  # the failures say why
    console.print(escape(f"  report: {outputs.report}"))
    console.print(escape(f"  results: {outputs.results}"))
    if outputs.extracted:
        folder = outputs.report.parent
        console.print(escape(f"  {outputs.extracted} file(s) extracted into {folder}"))


def _exit_if_batch_failed(run: batch_command.BatchRun) -> None:
    """Say why the run failed, naming each item that failed (with its job id), and exit 1; as
    `analyze`, a REJECTED item is an answer, not a failure."""
    reasons = batch_command.failures(run)
    if not reasons:
        return
    for reason in reasons:
        console.print(escape(reason), style="red")
    if run.outputs is not None and run.outputs.report is not None:
        for row in batch_command.failed_items(run.outputs.report):
            why = row.get("reason") or "no error recorded"
            console.print(escape(f"  {row['item']}: {row['status']}: {why} (job {row['job_id']})"))
    if run.starts_without_them_at is not None:
        when = run.starts_without_them_at
        console.print(escape(f"the batch starts without them once their forms expire ({when})"))
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
    # The stages some photo ran (the demo asks for no measurements, say).
    stages = [
        stage.value
        for stage in Stage
        if any(stage.value in (job.result or {}).get("timings_ms", {}) for job in jobs)
    ]
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
@click.option(
    "--api-port", type=int, default=3000, show_default=True, help="the web page and the public API"
)
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
    """Run the embedded stack on 127.0.0.1: the web page and the public API on --api-port, and
    AWS for AWS_ENDPOINT_URL."""
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
        console.print(f"  Web page: {stack.gateway.page_url}")
        for name, value in stack.outputs.items():
            console.print(f"  {name}: {value}")
        for key, holder in stack.api_keys.items():
            role = "" if holder.role == "user" else f" ({holder.role})"
            console.print(f"  API key for tenant {holder.tenant!r}{role}: {key}")
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


@main.command("deploy-web")
@click.option("--stack-name", required=True, help="the stack `sam deploy` created")
def deploy_web(stack_name: str) -> None:
    """Put the web page in a deployed stack's page bucket and clear CloudFront's copy (AWS
    credentials and region from the usual places)."""
    from silhouette.client.web_deploy import deploy_page

    deployed = deploy_page(stack_name)
    console.print(f"{len(deployed.uploaded)} file(s) uploaded, {len(deployed.removed)} removed")
    console.print(f"web page: {deployed.url} (CloudFront refreshes its copy within minutes)")


main.add_command(events)

if __name__ == "__main__":
    main()
