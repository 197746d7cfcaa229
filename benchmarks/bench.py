"""The benchmark `make bench` runs: one markdown table of figures on stdout, the same rows as
JSON in silhouette-out/bench.json (progress on stderr). Asserts nothing: the issue's targets are
read here, met or not.

Sections: 1. Silhouette against the naive script (side_by_side.py); 2. `silhouette analyze` end
to end on 1, 4 and 16 portraits; 3. per stage, the warm Lambda durations of the 16-photo run
beside the bare model time of the same photos in this process; 4. the project's own cost and
the emulator's share; 5. cold starts (init, imports: import_times.py); 6. peak memory against
MemorySize (stage_memory.py); 7. AWS cost per 1000 photos; targets. About 10 minutes on 2
idle cores (14 beside another test run). The runs' outputs (lambda.log, results, AWS
calls) stay in silhouette-out/bench/.

    make bench        # or: python benchmarks/bench.py
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import import_times
import side_by_side
import stage_memory
from pipeline_load import function_reports

from silhouette.local.aws_calls import CALL_LOG_VARIABLE
from silhouette.pipeline import PIPELINE
from silhouette.schema import Stage

OUT = stage_memory.PROJECT_ROOT / "silhouette-out"
RUNS = OUT / "bench"
ROUNDS = 2  # side by side
PORTRAITS = 14  # side by side, and the photos the other runs cycle through
END_TO_END = (1, 4, 16)  # photos per `silhouette analyze`; the last run feeds sections 3-7
FAST_PHOTOS = 4
IMPORT_RUNS = 2
MEMORY_MEGAPIXELS = (1.0, 12.0)  # and MaxPixels
MEMORY_FLAG = 0.8  # of MemorySize
STAGES = tuple(Stage)  # the six analysis stages and finalize
ANALYSIS = tuple(spec.stage for spec in PIPELINE)
INIT = "platform.initReport"  # a provisioned instance's init; its first REPORT line is warm

# AWS list prices in USD, us-east-1, as the issue gives them (2026-11-22; not re-checked).
LAMBDA_GB_SECOND = 0.0000166667  # x86, billed per ms
LAMBDA_REQUEST = 0.20 / 1e6
STEP_FUNCTIONS_TRANSITION = 0.025 / 1000  # Standard workflows
API_GATEWAY_REQUEST = 3.50 / 1e6  # REST API
S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET = 0.0004 / 1000  # GET and the rest
DYNAMODB_WRITE_UNIT = 1.25 / 1e6  # on-demand
DYNAMODB_READ_UNIT = 0.25 / 1e6
EVENTBRIDGE_EVENT = 1.00 / 1e6  # custom events (PutEvents)
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DYNAMODB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}

Value = float | dict[str, float] | str
# A figure: its name, its value (a number, named numbers or a word), its unit, a note.
Figure = tuple[str, Value, str, str]
Bare = dict[str, dict[Stage, float]]  # job id -> stage -> bare model ms


@dataclass
class Row:
    section: str
    figure: str
    value: Value
    unit: str
    note: str


@dataclass
class Run:
    """One `silhouette analyze` process: its wall seconds, the seconds until its first output
    line (printed once the embedded stack is up; the function instances keep starting in the
    background), its Lambda REPORT lines by function (`IngestFunction`), each job's
    result.json, the job each invocation served (function_request_id -> job id), and the
    init_duration_ms of each function's instances (provisioned ones and those started on
    demand, whose first REPORT line carries it)."""

    out: Path
    photos: int
    wall_s: float
    stack_s: float
    reports: dict[str, list[dict[str, Any]]]
    results: list[dict[str, Any]]
    job_of: dict[str, str]
    inits: dict[str, list[float]]


def function_of(stage: Stage) -> str:
    return f"{stage.value.title()}Function"


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


def warm_ms(run: Run, function: str) -> list[float]:
    """The function's durations on warm instances (REPORT lines without init_duration_ms);
    all of them when every one was cold."""
    reports = run.reports.get(function, [])
    warm = [r["duration_ms"] for r in reports if "init_duration_ms" not in r]
    return warm or [r["duration_ms"] for r in reports]


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Measuring ----------------------------------------------------------------------------------


def photo_set(count: int, folder: Path) -> list[Path]:
    """`count` of side_by_side's portraits, repeated as needed, each linked under its own name
    so that each gets its own result folder."""
    folder.mkdir(parents=True)
    chosen = side_by_side.portraits(PORTRAITS)
    links = [folder / f"{i:02d}-{chosen[i % len(chosen)].name}" for i in range(count)]
    for index, link in enumerate(links):
        link.symlink_to(chosen[index % len(chosen)])
    return links


def analyze(name: str, count: int, quality: str = "quality", calls: Path | None = None) -> Run:
    """A fresh `silhouette analyze` on `count` portraits, its output in RUNS/name; `calls`: a
    file for the functions' AWS calls (silhouette.local.aws_calls)."""
    out = RUNS / name
    command = side_by_side.silhouette_command(photo_set(count, out / "in"), out)
    environment = os.environ | ({CALL_LOG_VARIABLE: str(calls)} if calls else {})
    started = time.perf_counter()
    first_line = None
    with subprocess.Popen(
        [*command, "--quality", quality], stdout=subprocess.PIPE, text=True, env=environment
    ) as process:
        assert process.stdout is not None
        for _ in process.stdout:
            first_line = first_line or time.perf_counter() - started
    wall = time.perf_counter() - started
    if process.returncode:
        progress(f"{name}: silhouette analyze exited {process.returncode}")
    log = [json.loads(line) for line in (out / "lambda.log").read_text().splitlines()]
    job_of = {r["function_request_id"]: r["correlation_id"] for r in log if "correlation_id" in r}
    results = [json.loads(path.read_text()) for path in sorted(out.glob("*/result.json"))]
    reports = function_reports(out / "lambda.log")
    inits: dict[str, list[float]] = defaultdict(list)
    for function, records in [
        *reports.items(),
        *function_reports(out / "lambda.log", INIT).items(),
    ]:
        inits[function] += [r["init_duration_ms"] for r in records if r.get("init_duration_ms")]
    return Run(out, count, wall, first_line or wall, reports, results, job_of, inits)


def job_ms(run: Run, stages: Iterable[Stage]) -> dict[str, tuple[float, bool]]:
    """Per job: the summed durations of its invocations of the stages' functions, and
    whether every one of them ran on a warm instance."""
    sums: dict[str, tuple[float, bool]] = {}
    for stage in stages:
        for report in run.reports.get(function_of(stage), []):
            job = run.job_of.get(report["function_request_id"], "")
            total, warm = sums.get(job, (0.0, True))
            sums[job] = total + report["duration_ms"], warm and "init_duration_ms" not in report
    return sums


def bare_model_ms(run: Run) -> Bare:
    """Per COMPLETED photo of `run`, the ms each model takes in this process on the working
    image the pipeline wrote: one MediaPipe pose pass, IS-Net (segmentation.person_matte), KMeans
    on the clothing mask (colors.dominant_colors; 0 where the colors stage had nothing to
    cluster) and the face models (face.analyse_face, without the pose stage's hint). Each model
    is loaded, and run once on the first photo, before anything is timed."""
    from silhouette.vision import colors, face, imaging, pose, segmentation

    models: dict[Stage, Callable[[Any, Any], object]] = {
        Stage.POSE: lambda image, _: pose._landmarker().detect(face.mp_image(image)),
        Stage.SEGMENT: lambda image, _: segmentation.person_matte(image),
        Stage.COLORS: lambda image, mask: colors.dominant_colors(image, mask),
        Stage.FACE: lambda image, _: face.analyse_face(image),
    }
    figures: Bare = {}
    for result in (r for r in run.results if r["status"] == "COMPLETED"):
        folder = run.out / Path(result["filename"]).stem
        image = imaging.decode((folder / "image.png").read_bytes())[..., :3]
        mask = imaging.decode((folder / "clothing_mask.png").read_bytes()) > 0
        if not figures:  # load each model, and run it once: a first run is no warm one
            for model in models.values():
                model(image, mask)
        figures[result["job_id"]] = {}
        for stage, model in models.items():
            started = time.perf_counter()
            if stage != Stage.COLORS or not result.get("colors_note"):
                model(image, mask)
            figures[result["job_id"]][stage] = (time.perf_counter() - started) * 1000
    return figures


def codec_ms(run: Run) -> dict[str, float]:
    """Median ms per photo of imaging.decode of the working pixels, times the six stages after
    ingest that read them, and of what ingest and segment encode (the working image as a PNG
    and as pixels, the cutout), on the artifacts the pipeline wrote."""
    from silhouette.vision import imaging

    decode, encode = [], []
    for folder in (path.parent for path in run.out.glob("*/cutout.png")):
        image = imaging.decode((folder / "image.png").read_bytes())
        cutout = imaging.decode((folder / "cutout.png").read_bytes())
        started = time.perf_counter()
        imaging.encode_png(image)
        pixels = imaging.encode_raw(image)
        imaging.encode_png(cutout)
        encode.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        imaging.decode(pixels)
        decode.append((time.perf_counter() - started) * 1000 * 6)
    return {"decode": statistics.median(decode), "encode": statistics.median(encode)}


def own_cost(run: Run, bare: Bare) -> tuple[list[tuple[float, float]], str]:
    """Per photo: (its stage durations, finalize included, minus its bare model time, in ms;
    that as % of the model time), the project's own cost; of the photos whose every stage ran
    warm, else of all. And which photos those are."""
    stages = job_ms(run, STAGES)
    for warm_only, which in ((True, "photos all warm"), (False, "photos, none all warm")):
        own = [
            (total - sum(bare[job].values()), (total / sum(bare[job].values()) - 1) * 100)
            for job, (total, warm) in stages.items()
            if job in bare and (warm or not warm_only)
        ]
        if own:
            return own, f"{len(own)} {which}"
    return [], "no photo COMPLETED"


def fast_stage_ms(fast: Run) -> dict[str, float]:
    """Stage compute per photo in fast mode: the median warm duration of each analysis stage
    the photos ran (a stage they did not ask for, e.g. measure, is not counted)."""
    return {
        stage.value: median(durations)
        for stage in ANALYSIS
        if (durations := warm_ms(fast, function_of(stage)))
    }


# Sections -----------------------------------------------------------------------------------


def side_by_side_figures(times: list[tuple[float, float]]) -> list[Figure]:
    """Wall seconds per round of `silhouette analyze` and of the naive script on the same
    portraits, run in turn; how many times faster Silhouette is (naive / silhouette)."""
    ours, theirs = [t[0] for t in times], [t[1] for t in times]
    ratios = [naive / silhouette for silhouette, naive in times]
    per_minute = {
        "silhouette": PORTRAITS / statistics.median(ours) * 60,
        "naive": PORTRAITS / statistics.median(theirs) * 60,
    }
    return [
        ("silhouette analyze, per round", rounds(ours), "s wall", "fresh process, quality"),
        ("naive script, per round", rounds(theirs), "s wall", "warmed up once untimed"),
        ("naive / silhouette", rounds(ratios), "x faster", f"median {number(median(ratios))}x"),
        ("throughput (median round)", per_minute, "photos/min", ""),
    ]


def rounds(values: Iterable[float]) -> dict[str, float]:
    return {f"round {number}": value for number, value in enumerate(values, 1)}


def end_to_end_figures(runs: list[Run]) -> list[Figure]:
    """Each run a fresh `silhouette analyze`: wall seconds (stack start included), photos per
    minute, and seconds to its first output line (the embedded stack is up)."""
    figures: list[Figure] = [
        (
            f"{run.photos} photo(s)",
            {
                "wall": run.wall_s,
                "photos/min": run.photos / run.wall_s * 60,
                "stack up": run.stack_s,
            },
            "s, photos/min, s",
            ", ".join(f"{n} {s}" for s, n in Counter(r["status"] for r in run.results).items()),
        )
        for run in runs
    ]
    stack = statistics.median(run.stack_s for run in runs)
    note = "to the first output line; instances init in the background from there (section 5)"
    return [*figures, ("stack start, median of the runs", stack, "s", note)]


def stage_figures(run: Run, bare: Bare) -> list[Figure]:
    """Per stage: median and p95 of its warm durations in `run`, beside the median bare model
    time of the same photos in this process."""
    models = {
        Stage.POSE: "model: one PoseLandmarker pass (the stage runs several, and more models)",
        Stage.SEGMENT: "model: IS-Net person_matte",
        Stage.COLORS: "model: KMeans dominant_colors on clothing_mask.png",
        Stage.FACE: "model: analyse_face (detector, age, sex), no hint",
    }
    figures: list[Figure] = []
    for stage in STAGES:
        durations = warm_ms(run, function_of(stage))
        if not durations:  # a stage these photos do not ask for (measure: options.measurements)
            continue
        value = {"median": statistics.median(durations), "p95": p95(durations)}
        if stage in models:
            value["bare model median"] = median(b[stage] for b in bare.values())
        note = f"n={len(durations)}; {models.get(stage, 'no model')}"
        figures.append((stage.value, value, "ms", note))
    return figures


def emulator_ms(run: Run) -> list[float]:
    """Per job: timings_ms.total (upload arrival to finalize) minus its six analysis stages'
    durations: Step Functions and emulator transitions, queueing, waits for an instance."""
    stages = job_ms(run, ANALYSIS)
    return [r["timings_ms"]["total"] - stages.get(r["job_id"], (0, True))[0] for r in run.results]


def overhead_figures(run: Run, alone: Run, bare: Bare, codec: dict[str, float]) -> list[Figure]:
    """The project's own cost per photo (own_cost, median), its encoding and decoding; the
    emulator's share per job (emulator_ms) in `run` and in `alone`, a run of one photo."""
    own, which = own_cost(run, bare)
    emulator = emulator_ms(run)
    cost = {"ms": median(o[0] for o in own), "% of model time": median(o[1] for o in own)}
    return [
        ("own cost: warm stages - bare models", cost, "ms, %", which),
        ("  of which reading the working pixels x6", codec["decode"], "ms", "in this process"),
        (
            "  of which encoding working image, pixels, cutout",
            codec["encode"],
            "ms",
            "in this process",
        ),
        (
            "emulator share: total - stage durations",
            {"median": statistics.median(emulator), "p95": p95(emulator)},
            "ms per job",
            "Step Functions transitions, queueing for instances, starter; finalize to its stamp",
        ),
        (
            f"  the same, {alone.photos}-photo run (no queueing)",
            median(emulator_ms(alone)),
            "ms per job",
            "its instances were provisioned at the stack's start",
        ),
    ]


def cold_start_figures(runs: list[Run], imports: dict[str, float]) -> list[Figure]:
    """Per function: the median init_duration_ms of its instances over `runs`, and the
    ms a fresh interpreter takes to import its handler (import_times.py)."""
    inits: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for function, values in run.inits.items():
            inits[function] += values
    figures: list[Figure] = []
    imports = dict(imports)  # those not shown with a function are shown on their own
    for function, values in sorted(inits.items()):
        label = f"{function.removesuffix('Function').lower()} function"
        value = {"init median": statistics.median(values)}
        value |= {"import": imports.pop(label) * 1000} if label in imports else {}
        note = f"n={len(values)}; the provisioned ones init all at once on 2 cores"
        figures.append((function, value, "ms", note))
    return figures + [(f"{label} import", s * 1000, "ms", "") for label, s in imports.items()]


def memory_figures(measurements: list[stage_memory.Measurement], run: Run) -> list[Figure]:
    """Per function: peak resident memory, the worse of two photos in one process, as % of
    MemorySize at each size (stage_memory.py); above MEMORY_FLAG is flagged. Finalize from
    the REPORT lines of `run`."""
    by_stage: dict[Stage, list[stage_memory.Measurement]] = defaultdict(list)
    for measurement in measurements:
        by_stage[measurement.stage].append(measurement)
    figures: list[Figure] = []
    for stage, taken in by_stage.items():
        value = {m.case.label.removesuffix(" 3:4"): worst_share(m) * 100 for m in taken}
        largest = taken[-1]
        note = f"{max(largest.first_mb, largest.second_mb):.0f} of {largest.limit_mb} MB"
        note += "".join(f"; ABOVE 80% at {m.case.label}" for m in taken if worst_share(m) > 0.8)
        note += "" if largest.outcome == "continue" else f"; {largest.outcome}"
        figures.append((stage.value, value, "% of MemorySize", note))
    reports = run.reports[function_of(Stage.FINALIZE)]
    peak, limit = max(r["max_memory_used_mb"] or 0 for r in reports), reports[0]["memory_size_mb"]
    note = f"{peak} of {limit} MB; REPORT lines, {run.photos}-photo run (it reads no pixels)"
    return [*figures, ("finalize", peak / limit * 100, "% of MemorySize", note)]


def worst_share(measurement: stage_memory.Measurement) -> float:
    return max(measurement.first_mb, measurement.second_mb) / measurement.limit_mb


def transitions_per_job() -> int:
    """States a COMPLETED job with a face enters in statemachine.asl.json: from StartAt along
    each Task's Next and each Choice's Default (the way on) to the end."""
    definition = json.loads((stage_memory.PROJECT_ROOT / "statemachine.asl.json").read_text())
    name, count = definition["StartAt"], 0
    while name is not None:
        state, count = definition["States"][name], count + 1
        name = state.get("Default") if state["Type"] == "Choice" else state.get("Next")
    return count


def cost_figures(run: Run, calls: Path) -> list[Figure]:
    """USD per 1000 photos on AWS, estimated from `run`: each function's invocations per job x
    its warm median duration (rounded up to the ms) x its MemorySize (template.yaml); the AWS
    calls its functions made per job; API requests = the API function's invocations."""
    jobs, memory = len(run.results), stage_memory.memory_sizes()
    invocations = sum(len(reports) for reports in run.reports.values()) / jobs
    gb_s = sum(
        len(reports) / jobs * math.ceil(statistics.median(warm_ms(run, name))) * memory[name]
        for name, reports in run.reports.items()
    ) / (1000 * 1024)
    lines = calls.read_text().splitlines()
    made = Counter((call["service"], call["operation"]) for call in map(json.loads, lines))
    per_job = {operation: count / jobs for (_, operation), count in made.items()}
    writes = sum(per_job.get(operation, 0) for operation in DYNAMODB_WRITES)
    reads = sum(per_job.get(operation, 0) for operation in DYNAMODB_READS)
    puts, gets, events = (per_job.get(op, 0) for op in ("PutObject", "GetObject", "PutEvents"))
    record_kb = statistics.median(len(json.dumps(r)) for r in run.results) / 1024
    write_units, read_units = math.ceil(record_kb), math.ceil(record_kb / 4)
    api = len(run.reports["ApiFunction"]) / jobs
    transitions = transitions_per_job()
    costs = [
        ("Lambda compute", gb_s * LAMBDA_GB_SECOND, f"{gb_s:.2f} GB-s per photo"),
        ("Lambda requests", invocations * LAMBDA_REQUEST, f"{invocations:.1f} per photo"),
        (
            "Step Functions",
            transitions * STEP_FUNCTIONS_TRANSITION,
            f"{transitions} transitions per COMPLETED job (asl path, no retries)",
        ),
        (
            "API Gateway",
            api * API_GATEWAY_REQUEST,
            f"{api:.2f} per photo: POST /uploads, its share of the GET /jobs polls, the result",
        ),
        (
            "S3 requests",
            puts * S3_PUT + gets * S3_GET,
            f"{puts:.1f} PUT + {gets:.1f} GET per photo, presigned uploads/downloads included",
        ),
        (
            "DynamoDB",
            writes * write_units * DYNAMODB_WRITE_UNIT + reads * read_units * DYNAMODB_READ_UNIT,
            f"{writes:.1f} writes x {write_units} WRU + {reads:.1f} reads x {read_units} RRU per"
            f" photo, units sized by the {record_kb:.1f} KB result (an upper bound)",
        ),
        ("EventBridge", events * EVENTBRIDGE_EVENT, f"{events:.1f} PutEvents per photo"),
    ]
    total = sum(usd for _, usd, _ in costs)
    note = (
        f"{run.photos} photos submitted together, warm durations on 2 shared cores; without"
        " init, storage, transfer, CloudWatch, X-Ray, the Sweeper's schedule"
    )
    return [(name, usd * 1000, "USD", note) for name, usd, note in costs] + [
        ("total", total * 1000, "USD", note)
    ]


def target_figures(
    times: list[tuple[float, float]],
    run: Run,
    bare: Bare,
    fast: Run,
    measurements: list[stage_memory.Measurement],
) -> list[Figure]:
    """The issue's targets, each with its measured figure, met or not."""
    speedup = statistics.median(naive / silhouette for silhouette, naive in times)
    overhead = median(o[1] for o in own_cost(run, bare)[0])
    fast_stages = fast_stage_ms(fast)
    fast_ms = sum(fast_stages.values())
    largest = [m for m in measurements if m.case == measurements[-1].case]
    memory = max(worst_share(m) for m in largest) * 100
    checks = [
        ("Silhouette >= 1.5x faster than the naive script", speedup, "x", speedup >= 1.5, ""),
        ("project overhead <= 10% of model compute", overhead, "%", overhead <= 10, ""),
        (
            f"fast mode <= 300 ms stage compute per photo, {fast.photos} photos",
            fast_ms,
            "ms",
            fast_ms <= 300,
            ": " + shown(fast_stages) + " (warm medians)",
        ),
        (
            f"peak RSS <= 80% of MemorySize at {largest[0].case.label}, twice warm",
            memory,
            "% (worst)",
            memory <= 80,
            "",
        ),
    ]
    return [
        (name, value, unit, ("met" if met else "NOT MET") + detail)
        for name, value, unit, met, detail in checks
    ]


# Output -------------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median, or NaN (shown as n/a, written as null) when there is none."""
    values = list(values)
    return statistics.median(values) if values else math.nan


def number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{2 if abs(value) >= 0.1 else 3}g}"


def shown(value: Value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{name} {number(figure)}" for name, figure in value.items())
    return value if isinstance(value, str) else number(value)


def as_json(row: Row) -> dict[str, Any]:
    """The row as JSON has it: NaN as null."""

    def plain(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    value = (
        {k: plain(v) for k, v in row.value.items()} if isinstance(row.value, dict) else row.value
    )
    return asdict(row) | {"value": plain(value)}


def markdown(rows: list[Row]) -> str:
    lines = ["| section | figure | value | unit | note |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.section} | {r.figure} | {shown(r.value)} | {r.unit} | {r.note} |" for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True)
    progress("the naive script once on no photo, untimed (rembg's numba kernels)")
    side_by_side.warm_up()
    progress(f"side by side: {ROUNDS} rounds of {PORTRAITS} portraits")
    times = side_by_side.compare(side_by_side.portraits(PORTRAITS), ROUNDS)
    calls = RUNS / "aws_calls.jsonl"
    runs = []
    for count in END_TO_END:
        progress(f"silhouette analyze, {count} photo(s)")
        runs.append(analyze(f"quality-{count}", count, calls=calls if count == 16 else None))
    progress(f"silhouette analyze --quality fast, {FAST_PHOTOS} photos")
    fast = analyze(f"fast-{FAST_PHOTOS}", FAST_PHOTOS, quality="fast")
    run = runs[-1]
    progress("bare models in this process")
    bare, codec = bare_model_ms(run), codec_ms(run)
    progress("import times")
    imports = import_times.import_times(runs=IMPORT_RUNS)
    sizes = [*MEMORY_MEGAPIXELS, stage_memory.template_limits()[0] / 1e6]
    progress(f"peak memory at {sizes} MP")
    measurements = list(stage_memory.measure_all(sizes, strips=False))
    sections = {
        f"1. side by side, {PORTRAITS} portraits": side_by_side_figures(times),
        "2. end to end": end_to_end_figures(runs),
        f"3. per stage, warm, {run.photos} photos": stage_figures(run, bare),
        "4. overhead per photo": overhead_figures(run, runs[0], bare, codec),
        "5. cold start": cold_start_figures([*runs, fast], imports),
        "6. peak memory, worse of 2 photos": memory_figures(measurements, run),
        "7. AWS per 1000 photos (estimate)": cost_figures(run, calls),
        "targets": target_figures(times, run, bare, fast, measurements),
    }
    minutes = (time.perf_counter() - started) / 60
    sections["run"] = [("bench.py run time", minutes, "min", f"{os.cpu_count()} cores")]
    rows = [Row(section, *figure) for section, figures in sections.items() for figure in figures]
    print(markdown(rows))
    (OUT / "bench.json").write_text(json.dumps([as_json(row) for row in rows], indent=2) + "\n")
    progress(f"the same figures in {OUT / 'bench.json'}")


if __name__ == "__main__":
    main()
