"""The pipeline, declared once: its analysis stages in the order they run, what each writes and
which result fields it owns. Finalize, the job record and the result model take what they need
from here, and tests/integration/test_pipeline_declaration.py fails, naming the difference, when
statemachine.asl.json or template.yaml disagree with it. How to add a stage: the README's
"Adding a stage"."""

from __future__ import annotations

from dataclasses import dataclass

from silhouette.names import (
    CLOTHING_MASK,
    CUTOUT,
    FACE_CROP,
    MEASUREMENT_PICTURE,
    OVERLAY,
    PERSON_MASK,
    WORKING_IMAGE,
)
from silhouette.schema import JobOptions, Stage


@dataclass(frozen=True)
class StageSpec:
    stage: Stage
    artifacts: tuple[str, ...]  # the artifact names it writes
    result_fields: tuple[str, ...]  # the facts it produces that the job's result carries
    # The JobOptions flag that switches the stage on, for a stage a job may go without.
    option: str | None = None

    @property
    def title(self) -> str:
        """Its name in the definitions: the ASL Task `Pose`, its outcome Choice `PoseOutcome`,
        the template's `PoseFunction` built from functions/pose/."""
        return self.stage.value.title()

    @property
    def function(self) -> str:
        return f"{self.title}Function"

    def wanted(self, options: JobOptions) -> bool:
        return self.option is None or bool(getattr(options, self.option))


PIPELINE: tuple[StageSpec, ...] = (
    StageSpec(Stage.INGEST, artifacts=(WORKING_IMAGE,), result_fields=("image", "view_images")),
    StageSpec(Stage.POSE, artifacts=(PERSON_MASK,), result_fields=("person", "side_person")),
    StageSpec(Stage.SEGMENT, artifacts=(CUTOUT, CLOTHING_MASK), result_fields=()),
    StageSpec(Stage.COLORS, artifacts=(), result_fields=("calibration", "colors", "colors_note")),
    StageSpec(Stage.SKIN, artifacts=(), result_fields=("skin",), option="skin"),
    StageSpec(Stage.FACE, artifacts=(FACE_CROP,), result_fields=("face",), option="face"),
    StageSpec(Stage.MEASURE, artifacts=(), result_fields=("measurements",), option="measurements"),
    # Last: it draws what every stage before it found.
    StageSpec(Stage.OVERLAY, artifacts=(OVERLAY, MEASUREMENT_PICTURE), result_fields=()),
)


def result_fields() -> tuple[str, ...]:
    """Every result field some stage owns, in pipeline order."""
    return tuple(field for spec in PIPELINE for field in spec.result_fields)


def job_functions() -> tuple[str, ...]:
    """The template's functions (logical ids) a job runs through, from its upload to its result:
    the ones a command analysing photos starts ahead (batches and upkeep start when used)."""
    stages = (spec.function for spec in PIPELINE)
    return ("ApiFunction", "UploadStarterFunction", *stages, "FinalizeFunction")
