"""A job's measurements as a tailor takes them away, at one version (the analysis, or after
adjustments: service/measurement_versions.py): a CSV (one row per measurement, with its error
band, where it comes from, scale and reasons) and the one-page PDF sheet
(service/measurement_pdf.py)."""

from __future__ import annotations

import csv
import io

from silhouette.schema import BodyMeasurements, JobResult
from silhouette.service.measurement_pdf import MeasurementSheet, SheetRow
from silhouette.service.measurement_versions import (
    ORIGINAL_SOURCE,
    MeasurementHistory,
    MeasurementVersion,
)

CSV_COLUMNS = (
    "measurement",
    "value_cm",
    "error_cm",
    "status",
    "source",
    "reason",
    "method",
    "views",
    "scale",
)


def measurements_csv(measured: BodyMeasurements, version: MeasurementVersion) -> str:
    """One row per measurement, in the result's order; a missing value has its reason."""
    scale_text = _scale_text(measured)
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, analysed in measured.values.items():
        value, error = version.values[name], version.errors[name]
        adjusted = version.sources[name] != ORIGINAL_SOURCE
        writer.writerow(
            (
                name,
                "" if value is None else f"{value:.1f}",
                "" if error is None else f"{error:.1f}",
                "ok" if value is not None else "missing",
                version.sources[name],
                "" if adjusted else analysed.reason or "",
                "" if adjusted else analysed.method or "",
                " ".join(sorted({line.view.value for line in analysed.lines})),
                scale_text,
            )
        )
    return output.getvalue()


def measurement_sheet(
    result: JobResult,
    history: MeasurementHistory,
    version: MeasurementVersion,
    picture: bytes | None,
) -> MeasurementSheet:
    """What the PDF shows of `version`; `picture` is the measured views with their lines."""
    measured = result.measurements
    assert measured is not None  # the API serves sheets of measured jobs only
    rows = []
    for name, analysed in measured.values.items():
        source = version.sources[name]
        note = f"adjusted ({source})" if source != ORIGINAL_SOURCE else analysed.reason or ""
        rows.append(SheetRow(name, version.values[name], version.errors[name], note))
    return MeasurementSheet(
        job_id=result.job_id,
        taken_at=result.updated_at,
        version_label=_version_label(history, version),
        scale_text=_scale_text(measured),
        confidence=measured.confidence,
        rows=tuple(rows),
        notes=tuple(measured.notes),
        skin=result.skin,
        pictures=(("Front and side, as measured", picture),) if picture else (),
    )


def _version_label(history: MeasurementHistory, version: MeasurementVersion) -> str:
    if version.version == 0:
        label = "Original analysis"
    else:
        assert version.author is not None
        label = f"Version {version.version}: {version.source}, by {version.author.key}"
    if version.approvals:
        latest = version.approvals[-1]
        label += f"; approved by {latest.by.key} ({latest.by.role.value}) {latest.at:%Y-%m-%d}"
    if version.version < history.current:
        label += f" (the latest is version {history.current})"
    return label


_SCALE_SOURCES = {"card": "an ID-1 card in the front view", "height": "the stated height"}


def _scale_text(measured: BodyMeasurements) -> str:
    scale = measured.scale
    if scale is None:
        return "none"
    return f"{_SCALE_SOURCES[scale.source]} (±{scale.relative_error:.1%})"
