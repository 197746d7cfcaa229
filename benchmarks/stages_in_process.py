"""Each stage's own time per photo, one photo at a time in one process, on the portraits of
side_by_side.py: what a stage costs without the emulator, the other functions or queueing.

    python benchmarks/stages_in_process.py [--quality fast|quality] [--photos 14]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from datetime import UTC, datetime

from side_by_side import portraits

from silhouette.pipeline import PIPELINE
from silhouette.schema import JobOptions, PipelineState, Stage
from silhouette.service import keys
from silhouette.service.storage import MemoryStore
from silhouette.vision import face, pose, segmentation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", choices=("fast", "quality"), default="fast")
    parser.add_argument("--photos", type=int, default=14)
    arguments = parser.parse_args()
    stages = {
        spec.stage: importlib.import_module(f"silhouette.service.stages.{spec.stage.value}")
        for spec in PIPELINE
    }
    for models in (segmentation, pose, face):  # loaded before any photo's time
        models.load_models()
    wall_ms: dict[Stage, list[float]] = {spec.stage: [] for spec in PIPELINE}
    for number, photo in enumerate(portraits(arguments.photos)):
        store, job_id = MemoryStore(), f"job{number:04d}"
        store.put(keys.upload(job_id), photo.read_bytes(), "image/jpeg")
        state = PipelineState(
            job_id=job_id,
            bucket="bench",
            upload_key=keys.upload(job_id),
            received_at=datetime.now(UTC),
            options=JobOptions(quality=arguments.quality),
        )
        for spec in PIPELINE:
            if not spec.wanted(state.options):
                continue
            started = time.perf_counter()
            result = stages[spec.stage].run(state, store)
            wall_ms[spec.stage].append((time.perf_counter() - started) * 1000)
            state.stages[spec.stage] = result
            if result.outcome != "continue":
                break
    medians = {stage.value: statistics.median(ms) for stage, ms in wall_ms.items() if ms}
    print(f"{arguments.quality} mode, median ms per photo over {arguments.photos} portraits:")
    print(", ".join(f"{stage} {ms:.0f}" for stage, ms in medians.items()))
    print(f"sum of the medians: {sum(medians.values()):.0f} ms")


if __name__ == "__main__":
    main()
