"""A job's measurements as a tailor takes them away: a CSV (one row per measurement, the
result's values with their error bands, scale and reasons)."""

from __future__ import annotations

import csv
import io

from silhouette.schema import BodyMeasurements

CSV_COLUMNS = (
    "measurement",
    "value_cm",
    "error_cm",
    "status",
    "reason",
    "method",
    "views",
    "scale",
)


def measurements_csv(measurements: BodyMeasurements) -> str:
    """One row per measurement, in the result's order; a missing value has its reason."""
    scale = measurements.scale
    scale_text = f"{scale.source} (+-{scale.relative_error:.1%})" if scale else "none"
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, value in measurements.values.items():
        writer.writerow(
            (
                name,
                "" if value.value_cm is None else f"{value.value_cm:.1f}",
                "" if value.error_cm is None else f"{value.error_cm:.1f}",
                value.status,
                value.reason or "",
                value.method or "",
                " ".join(sorted({line.view.value for line in value.lines})),
                scale_text,
            )
        )
    return output.getvalue()
