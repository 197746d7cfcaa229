"""The largest photo ingest accepts (MaxPixels) and the most extreme aspect ratio it accepts fit
every heavy function's MemorySize with a margin, also in a warm container.

Limits come from template.yaml: MaxPixels' default sizes the photos, and each function's
MemorySize (or the Globals default) is its budget. Each stage runs in a fresh process (a cold
container) on the photo twice (the second run is a warm container's: allocators and model arenas
keep what the first grew); benchmarks/stage_memory.py is the child. Every stage reads the working
image ingest wrote; the later ones get the sample photo's pose and person mask scaled as the
photo was (the person mask also stands in for the clothing mask), so each is measured even
where pose would find nobody.

What is measured, and why not a resource limit: the child's peak resident memory (VmHWM, kept
exactly by the kernel), which is what Lambda holds against MemorySize. RLIMIT_AS counts address
space that onnxruntime, MediaPipe and thread stacks reserve without touching, and RLIMIT_DATA
private writable mappings whether touched or not: at 50 MP the stages' VmPeak ran 0.5-1.2 GB
and their VmData 0.2-0.3 GB above their peak RSS, so either limit would fail photos that fit
on Lambda. RLIMIT_DATA is still set, at twice MemorySize, as a guard only: a regression fails
fast instead of taking this machine's memory."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from silhouette.names import CLOTHING_MASK, CUTOUT, PERSON_MASK, PROJECT_ROOT
from silhouette.pipeline import PIPELINE
from silhouette.schema import PipelineState, Stage, StageResult
from silhouette.service import keys
from silhouette.service.stages.pose import person_of
from silhouette.vision import imaging
from silhouette.vision.pose import estimate_pose
from silhouette.vision.types import PoseEstimate


def _load_benchmark() -> ModuleType:
    path = PROJECT_ROOT / "benchmarks" / "stage_memory.py"
    spec = importlib.util.spec_from_file_location("stage_memory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()
# MemorySize must be at least this many times the peak: Lambda adds its runtime client and
# /tmp, and another photo of the same size may need a little more than the sample did.
MARGIN = 1.25
GUARD_FACTOR = 2  # RLIMIT_DATA, as a guard only (see the module notes)
LATER_STAGES = tuple(spec.stage for spec in PIPELINE[1:])
SAMPLE_JOB_ID = "b" * 32  # the scaled sample's masks, apart from where the stages write theirs


def _photos() -> list[bench.Case]:
    """The largest allowed photo in the sample's 3:4, and as the tallest allowed strip."""
    max_pixels, _ = bench.template_limits()
    _wide, tall = bench.strip_cases(max_pixels)
    return [bench.portrait_case(max_pixels / 1e6), tall]


PHOTOS = _photos()


def _scaled_person(facts: dict, scale: float) -> dict:
    """The pose stage's facts about the sample, for the sample scaled by `scale`."""
    person = dict(facts)
    person["keypoints"] = [
        {**point, "x": point["x"] * scale, "y": point["y"] * scale} for point in facts["keypoints"]
    ]
    for name in ("bbox", "face_box"):
        if facts[name] is not None:
            person[name] = {key: round(value * scale) for key, value in facts[name].items()}
    return person


def _with_sample_pose(
    state: PipelineState, case: bench.Case, case_dir: Path, sample: PoseEstimate
) -> None:
    """Pose and segment results for the later stages: the sample's, scaled as the photo was."""
    mask = bench.fill(sample.person_mask, case.width, case.height, cv2.INTER_NEAREST)
    mask_key = keys.artifact(SAMPLE_JOB_ID, PERSON_MASK, "png")
    store = bench.DirectoryStore(case_dir / "objects")
    store.put(mask_key, imaging.encode_png(mask), "image/png")
    # The cutout (what measure reads): the mask as its alpha.
    cutout_key = keys.artifact(SAMPLE_JOB_ID, CUTOUT, "png")
    cutout = np.zeros((*mask.shape, 4), np.uint8)
    cutout[..., 3] = mask
    store.put(cutout_key, imaging.encode_png(cutout), "image/png")
    sample_height, sample_width = sample.person_mask.shape
    scale = min(case.width / sample_width, case.height / sample_height)
    person = _scaled_person(person_of(sample).model_dump(mode="json"), scale)
    state.stages[Stage.POSE] = StageResult(
        artifacts={PERSON_MASK: mask_key}, facts={"person": person}
    )
    state.stages[Stage.SEGMENT] = StageResult(
        artifacts={CLOTHING_MASK: mask_key, CUTOUT: cutout_key}
    )


@pytest.fixture(scope="session")
def peaks(sample) -> dict:
    """Each heavy stage's measurement on each photo, {(stage, photo label): Measurement}, once
    per session; the artifacts (hundreds of MB) are deleted straight after."""
    with tempfile.TemporaryDirectory(prefix="memory-limits-") as workspace:
        return _measure_all(Path(workspace), sample.path(bench.SAMPLE_PHOTO))


def _measure_all(workspace: Path, sample_path: Path) -> dict:
    sample_pose = estimate_pose(np.asarray(Image.open(sample_path).convert("RGB")))
    assert sample_pose is not None
    # The photos side by side: most stages use one core, and make test runs on two.
    with ThreadPoolExecutor(max_workers=len(PHOTOS)) as pool:
        per_photo = pool.map(partial(_measure_photo, workspace, sample_pose), PHOTOS)
    return {key: measurement for measured in per_photo for key, measurement in measured.items()}


def _measure_photo(workspace: Path, sample_pose: PoseEstimate, case: bench.Case) -> dict:
    _, memory = bench.template_limits()
    case_dir = workspace / f"{case.width}x{case.height}"
    state = bench.upload_state(case, case_dir)
    measured = {}
    for stage in (Stage.INGEST, *LATER_STAGES):
        (case_dir / "state.json").write_text(state.model_dump_json())
        limit = memory[stage]
        measurement, result = bench.measure(
            stage, case, case_dir, limit, guard_mb=GUARD_FACTOR * limit
        )
        measured[stage, case.label] = measurement
        if stage == Stage.INGEST:
            if result is None or result.outcome != "continue":
                break  # the photo never reaches the later stages
            state.stages[Stage.INGEST] = result
            _with_sample_pose(state, case, case_dir, sample_pose)
        elif result is not None:
            state.stages.setdefault(stage, result)  # the overlay draws the colours found
    return measured


@pytest.mark.parametrize("case", PHOTOS, ids=lambda case: case.label)
@pytest.mark.parametrize("stage", [Stage.INGEST, *LATER_STAGES], ids=str)
def test_stage_fits_its_memory_size_with_a_margin(peaks, stage, case):
    measurement = peaks.get((stage, case.label))
    ingest = peaks[Stage.INGEST, case.label].outcome
    assert measurement is not None, f"{stage} did not run: ingest said {ingest} on {case.label}"
    assert not measurement.outcome.startswith("exit"), (
        f"{stage} on {case.label} died ({measurement.outcome}): out of memory under the "
        f"{GUARD_FACTOR * measurement.limit_mb} MB guard, or a crash (stderr above)"
    )
    worst = max(measurement.first_mb, measurement.second_mb)
    assert worst * MARGIN <= measurement.limit_mb, (
        f"{stage} on {case.label} peaked at {measurement.first_mb:.0f} MB (first photo) and "
        f"{measurement.second_mb:.0f} MB (second): MemorySize {measurement.limit_mb} MB needs "
        f"at least {worst * MARGIN:.0f} MB"
    )
