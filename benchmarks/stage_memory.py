"""Peak memory of each heavy stage on large photos, against its function's MemorySize.

Each stage runs in a fresh process (a cold Lambda container) on a photo twice, as two jobs (the
second is what a warm container sees: allocators and model arenas keep what the first grew). The
figure is the process's peak resident memory (VmHWM): interpreter, the handler's imports, models
and the work itself, which is what Lambda holds against MemorySize. Stages run as the pipeline
chains them, each on the artifacts the previous one wrote. Photos are bus.jpg (one of the sample
photos) upscaled to each size, and mirrored out into strips of the most extreme aspect ratios
ingest accepts. Prints a table; asserts nothing.

    python benchmarks/stage_memory.py                       # 12/24/36/50 MP, strips at MaxPixels
    python benchmarks/stage_memory.py --megapixels 50 --stages pose,segment --no-strips
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import math
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from silhouette.assets import Manifest
from silhouette.errors import RejectedInput
from silhouette.local.template import load
from silhouette.pipeline import PIPELINE
from silhouette.schema import PipelineState, Stage, StageResult
from silhouette.service import keys
from silhouette.service.handlers import StageLogic
from silhouette.settings import get_settings

# Not silhouette.local.stack's: importing the local stack (moto) would count in every figure.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PHOTO = "bus"
HEAVY_STAGES = tuple(spec.stage for spec in PIPELINE)
FUNCTIONS = {spec.stage: spec.function for spec in PIPELINE}
# The stages whose artifacts a stage reads (all of them read ingest's working image).
NEEDS = {
    Stage.INGEST: (),
    Stage.POSE: (Stage.INGEST,),
    Stage.SEGMENT: (Stage.INGEST, Stage.POSE),
    Stage.COLORS: (Stage.INGEST, Stage.POSE, Stage.SEGMENT),
    Stage.SKIN: (Stage.INGEST, Stage.POSE, Stage.SEGMENT, Stage.COLORS),
    Stage.FACE: (Stage.INGEST, Stage.POSE),
    Stage.MEASURE: (Stage.INGEST, Stage.POSE, Stage.SEGMENT, Stage.COLORS),
    Stage.OVERLAY: (Stage.INGEST, Stage.POSE, Stage.SEGMENT, Stage.COLORS),
}
JPEG_QUALITY = 90  # a camera's upload: PNG at these sizes would pass the upload byte limit


@dataclass(frozen=True)
class Case:
    label: str
    width: int
    height: int


@dataclass(frozen=True)
class Measurement:
    stage: Stage
    case: Case
    baseline_mb: float  # after the imports, before any photo
    first_mb: float
    second_mb: float
    limit_mb: int  # the function's MemorySize
    outcome: str


def memory_sizes() -> dict[str, int]:
    """Every function's MemorySize (MB) in template.yaml (its own, else Globals'), by logical
    id (`PoseFunction`)."""
    template = load(PROJECT_ROOT / "template.yaml")
    default_memory = template["Globals"]["Function"]["MemorySize"]
    return {
        name: int(resource["Properties"].get("MemorySize", default_memory))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def template_limits() -> tuple[int, dict[Stage, int]]:
    """MaxPixels' default and each heavy function's MemorySize (MB) from template.yaml."""
    template = load(PROJECT_ROOT / "template.yaml")
    memory = memory_sizes()
    limits = {stage: memory[name] for stage, name in FUNCTIONS.items()}
    return int(template["Parameters"]["MaxPixels"]["Default"]), limits


def portrait_case(megapixels: float) -> Case:
    """The sample photo's 3:4 shape at `megapixels` (never over it)."""
    height = math.isqrt(int(megapixels * 1e6 * 4 / 3))
    return Case(f"{megapixels:g} MP 3:4", height * 3 // 4, height)


def strip_cases(max_pixels: int) -> list[Case]:
    """The most extreme aspect ratios ingest accepts, wide and tall, at the largest photo."""
    ratio = get_settings().max_aspect_ratio
    long_side = math.isqrt(int(max_pixels * ratio))
    short_side = max_pixels // long_side
    megapixels = f"{long_side * short_side / 1e6:.0f} MP"
    return [
        Case(f"{megapixels} {ratio:g}:1", long_side, short_side),
        Case(f"{megapixels} 1:{ratio:g}", short_side, long_side),
    ]


def fill(source: np.ndarray, width: int, height: int, interpolation: int) -> np.ndarray:
    """`source` scaled to fit `width` x `height`, mirrored outwards to fill the rest (a strip
    shows the person several times, like a panorama of a group). The copy at the top left is
    `source` scaled by min(width / its width, height / its height)."""
    scale = min(width / source.shape[1], height / source.shape[0])
    size = (min(width, round(source.shape[1] * scale)), min(height, round(source.shape[0] * scale)))
    scaled = cv2.resize(source, size, interpolation=interpolation)
    padding = [(0, height - size[1]), (0, width - size[0])] + [(0, 0)] * (source.ndim - 2)
    return np.pad(scaled, padding, "symmetric")


def sample_photo() -> np.ndarray:
    samples = Manifest.load(PROJECT_ROOT / "samples" / "manifest.json")
    return np.asarray(Image.open(samples.path(SAMPLE_PHOTO)).convert("RGB"))


def upload_jpeg(case: Case) -> bytes:
    photo = fill(sample_photo(), case.width, case.height, cv2.INTER_CUBIC)
    output = io.BytesIO()
    Image.fromarray(photo).save(output, "JPEG", quality=JPEG_QUALITY)
    return output.getvalue()


class DirectoryStore:
    """An ArtifactStore on a local directory: the chained stages hand artifacts over on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete_prefix(self, prefix: str) -> int:
        doomed = [path for path in self.root.rglob("*") if path.is_file()]
        doomed = [path for path in doomed if str(path.relative_to(self.root)).startswith(prefix)]
        for path in doomed:
            path.unlink()
        return len(doomed)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB of 2**20 bytes."""
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_stage(logic: StageLogic, state: PipelineState, store: DirectoryStore) -> StageResult:
    """The stage's result as the pipeline records it: a rejection is an outcome, not an error."""
    try:
        return logic(state, store)
    except RejectedInput as rejection:
        return StageResult(outcome="rejected", reason=rejection.reason)


def run_child(stage: Stage, case_dir: Path, guard_mb: int | None) -> None:
    """In the fresh process: the stage on the case's state, twice; figures as JSON on stdout.
    `guard_mb` caps the process's private writable memory (RLIMIT_DATA), if given."""
    if guard_mb is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (guard_mb * 2**20, guard_mb * 2**20))
    logic = importlib.import_module(f"silhouette.service.stages.{stage.value}").run
    state = PipelineState.model_validate_json((case_dir / "state.json").read_text())
    store = DirectoryStore(case_dir / "objects")
    baseline = peak_rss_mb()
    result = run_stage(logic, state, store)
    first = peak_rss_mb()
    run_stage(logic, state.model_copy(update={"job_id": "f" * 32}), store)
    second = peak_rss_mb()
    figures = {"baseline": baseline, "first": first, "second": second}
    print(json.dumps({"figures": figures, "result": result.model_dump(mode="json")}))


def measure(
    stage: Stage, case: Case, case_dir: Path, limit_mb: int, guard_mb: int | None = None
) -> tuple[Measurement, StageResult | None]:
    """The stage in a fresh process; its result (None when it failed) feeds the next stage.
    `guard_mb`: see run_child."""
    guard = [] if guard_mb is None else ["--guard-mb", str(guard_mb)]
    child = subprocess.run(
        [sys.executable, __file__, "--child", stage.value, str(case_dir), *guard],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    if child.returncode != 0:
        print(child.stderr[-2000:], file=sys.stderr)
        return Measurement(stage, case, 0, 0, 0, limit_mb, f"exit {child.returncode}"), None
    report = json.loads(child.stdout.splitlines()[-1])
    figures = report["figures"]
    result = StageResult.model_validate(report["result"])
    outcome = result.outcome if result.reason is None else f"{result.outcome}: {result.reason}"
    peaks = figures["baseline"], figures["first"], figures["second"]
    return Measurement(stage, case, *peaks, limit_mb, outcome), result


def upload_state(case: Case, case_dir: Path) -> PipelineState:
    """A job whose upload is the sample photo at the case's size, stored under `case_dir`."""
    job_id = "a" * 32
    upload = upload_jpeg(case)
    DirectoryStore(case_dir / "objects").put(keys.upload(job_id), upload, "image/jpeg")
    return PipelineState(
        job_id=job_id,
        bucket="benchmark",
        upload_key=keys.upload(job_id),
        upload_size=len(upload),
        received_at=datetime.now(UTC),
    )


def measure_case(
    case: Case, stages: list[Stage], memory: dict[Stage, int], workspace: Path
) -> Iterator[Measurement]:
    """The stages chained on one photo, a measurement for each of `stages` as it is taken."""
    case_dir = workspace / f"{case.width}x{case.height}"
    state = upload_state(case, case_dir)
    needed = set(stages).union(*(NEEDS[stage] for stage in stages))
    for stage in (stage for stage in HEAVY_STAGES if stage in needed):
        (case_dir / "state.json").write_text(state.model_dump_json())
        measurement, result = measure(stage, case, case_dir, memory[stage])
        if stage in stages:
            yield measurement
        if result is None or result.outcome != "continue":
            break
        state.stages[stage] = result


def measure_all(
    megapixels: list[float], strips: bool = True, stages: list[Stage] | None = None
) -> Iterator[Measurement]:
    """Every stage (or `stages`) on the 3:4 photo of each size in `megapixels`, then (with
    `strips`) on the strips at MaxPixels, each measurement as it is taken."""
    max_pixels, memory = template_limits()
    cases = [portrait_case(size) for size in megapixels]
    if strips:
        cases += strip_cases(max_pixels)
    with tempfile.TemporaryDirectory(prefix="stage-memory-") as workspace:
        for case in cases:
            yield from measure_case(case, stages or list(HEAVY_STAGES), memory, Path(workspace))


def print_row(row: Measurement) -> None:
    """Headroom is the share of MemorySize left at the worse of the two photos."""
    worst = max(row.first_mb, row.second_mb)
    headroom = f"{(row.limit_mb - worst) / row.limit_mb:+6.0%}" if worst else "   n/a"
    print(
        f"{row.stage.value:<8} {row.case.label:<14} {row.case.width:>5}x{row.case.height:<5} "
        f"{row.baseline_mb:7.0f} {row.first_mb:7.0f} {row.second_mb:7.0f} {row.limit_mb:7d} "
        f"{headroom:>8}  {row.outcome}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", default="12,24,36,50")
    parser.add_argument("--stages", default=",".join(stage.value for stage in HEAVY_STAGES))
    parser.add_argument("--no-strips", action="store_true", help="skip the 10:1 and 1:10 strips")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "CASE_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--guard-mb", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(Stage(args.child[0]), Path(args.child[1]), args.guard_mb)
        return
    max_pixels, _ = template_limits()
    megapixels = [float(mp) for mp in args.megapixels.split(",")]
    stages = [Stage(name) for name in args.stages.split(",")]
    print(f"Peak resident memory (VmHWM, MB) of a fresh process per stage; MaxPixels {max_pixels}")
    print(
        f"{'stage':<8} {'photo':<14} {'size':<11} {'imports':>7} {'first':>7} {'second':>7} "
        f"{'limit':>7} {'headroom':>8}  outcome"
    )
    for measurement in measure_all(megapixels, not args.no_strips, stages):
        print_row(measurement)


if __name__ == "__main__":
    main()
