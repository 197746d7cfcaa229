"""Adjusted measurements: versions beside the analysis, which never changes, and approvals."""

from __future__ import annotations

import itertools

import pytest

from silhouette.schema import BodyMeasurements, JobOptions, JobStatus, Measurement, Role
from silhouette.service import measurement_versions as versions
from silhouette.service.measurement_versions import ApprovalRequest, MeasurementAdjustment
from silhouette.service.records import JobRecord, MemoryJobRecords
from silhouette.service.tenants import Caller

USER = Caller("acme", Role.USER, "key-1", "anna")
TAILOR = Caller("acme", Role.TAILOR, "key-2", "tom")
_ids = (f"{n:032x}" for n in itertools.count(1))
ANALYSED = BodyMeasurements(
    status="ok",
    values={
        "chest_circumference": Measurement(status="ok", value_cm=96.0, error_cm=4.0),
        "waist_circumference": Measurement(status="ok", value_cm=82.0, error_cm=4.5),
        "inseam": Measurement(status="missing", reason="ankles outside the front view"),
    },
)


def measured_job(
    records: MemoryJobRecords,
    measurements: BodyMeasurements | None = ANALYSED,
    status: JobStatus = JobStatus.COMPLETED,
) -> JobRecord:
    job_id = next(_ids)
    records.create_queued(job_id, "acme", "front.jpg", JobOptions(measurements=True), None)
    if status != JobStatus.QUEUED:
        fields = {"measurements": measurements.model_dump(mode="json") if measurements else None}
        assert records.finish(job_id, status, fields, erase_at=None)
    record = records.find(job_id)
    assert record is not None
    return record


def test_an_adjustment_is_a_new_version_and_the_analysis_stays_as_measured():
    records = MemoryJobRecords()
    record = measured_job(records)
    tape = MeasurementAdjustment(
        values={"chest_circumference": 99.5, "inseam": 81.0},
        errors={"chest_circumference": 0.5},
        source="tape measure",
        note="measured over a shirt",
    )

    history = versions.adjust(record, tape, USER, records)

    assert history.current == 1 and history.approved is None
    original, adjusted = history.versions
    assert original.values == {
        "chest_circumference": 96.0,
        "waist_circumference": 82.0,
        "inseam": None,
    }
    assert original.sources == dict.fromkeys(original.values, "analysis")
    assert adjusted.values == {
        "chest_circumference": 99.5,
        "waist_circumference": 82.0,
        "inseam": 81.0,
    }
    # An adjusted value without a band has an unknown one, not the analysis' band.
    assert adjusted.errors == {
        "chest_circumference": 0.5,
        "waist_circumference": 4.5,
        "inseam": None,
    }
    assert adjusted.sources["inseam"] == "tape measure" and adjusted.changed == [
        "chest_circumference",
        "inseam",
    ]
    assert adjusted.author is not None and (adjusted.author.key, adjusted.author.role) == (
        "anna",
        Role.USER,
    )
    stored = records.find(record.job_id)
    assert stored is not None and stored.to_result().measurements == ANALYSED
    # Read back from the record, the history is the same.
    assert versions.history(stored) == history


def test_later_versions_build_on_earlier_ones_and_approvals_name_their_version():
    records = MemoryJobRecords()
    record = measured_job(records)
    versions.adjust(
        record,
        MeasurementAdjustment(values={"chest_circumference": 99.0}, source="tape"),
        USER,
        records,
    )
    record = records.find(record.job_id)
    history = versions.adjust(
        record,
        MeasurementAdjustment(values={"waist_circumference": 80.0}, source="fitting"),
        TAILOR,
        records,
    )
    assert history.versions[2].values["chest_circumference"] == 99.0  # kept from version 1
    assert history.versions[2].values["waist_circumference"] == 80.0

    record = records.find(record.job_id)
    history = versions.approve(record, ApprovalRequest(version=1, note="checked"), TAILOR, records)

    assert history.approved == 1 and history.current == 2
    (approval,) = history.versions[1].approvals
    assert (approval.by.key, approval.by.role, approval.note) == ("tom", Role.TAILOR, "checked")
    assert history.versions[0].approvals == history.versions[2].approvals == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda r, rec: versions.adjust(
                rec, MeasurementAdjustment(values={"neck": 40.0}, source="tape"), USER, r
            ),
            versions.InvalidAdjustment,
        ),
        (
            lambda r, rec: versions.approve(rec, ApprovalRequest(version=1), TAILOR, r),
            versions.InvalidAdjustment,
        ),
    ],
)
def test_names_and_versions_the_job_does_not_have_are_refused(call, error):
    records = MemoryJobRecords()
    record = measured_job(records)
    with pytest.raises(error):
        call(records, record)
    assert records.find(record.job_id).measurement_versions is None


def test_only_finished_measured_jobs_have_versions():
    records = MemoryJobRecords()
    with pytest.raises(versions.NotFinished):
        versions.history(measured_job(records, status=JobStatus.QUEUED))
    with pytest.raises(versions.NotMeasured):
        versions.history(measured_job(records, measurements=None))
    with pytest.raises(versions.NotMeasured):
        versions.history(measured_job(records, status=JobStatus.REJECTED))


def test_an_adjustment_read_before_another_was_stored_is_refused_not_lost():
    records = MemoryJobRecords()
    record = measured_job(records)
    stale = records.find(record.job_id)
    versions.adjust(
        record, MeasurementAdjustment(values={"inseam": 80.0}, source="tape"), USER, records
    )

    with pytest.raises(versions.ChangedMeanwhile):
        versions.adjust(
            stale, MeasurementAdjustment(values={"inseam": 82.0}, source="tape"), USER, records
        )
    assert versions.history(records.find(record.job_id)).versions[-1].values["inseam"] == 80.0


def test_an_adjustment_is_validated_before_anything_is_stored():
    with pytest.raises(ValueError, match="greater than 0"):
        MeasurementAdjustment(values={"inseam": -3.0}, source="tape")
    with pytest.raises(ValueError):
        MeasurementAdjustment(values={}, source="tape")


def test_the_versions_a_record_holds_are_bounded(monkeypatch):
    records = MemoryJobRecords()
    record = measured_job(records)
    monkeypatch.setattr(versions, "MAX_ADJUSTMENTS", 2)
    monkeypatch.setattr(versions, "MAX_APPROVALS", 1)
    for value in (90.0, 91.0):
        record = records.find(record.job_id)
        versions.adjust(
            record, MeasurementAdjustment(values={"inseam": value}, source="t"), USER, records
        )
    versions.approve(records.find(record.job_id), ApprovalRequest(version=2), TAILOR, records)

    third = MeasurementAdjustment(values={"inseam": 92.0}, source="t")
    with pytest.raises(versions.TooManyVersions):
        versions.adjust(records.find(record.job_id), third, USER, records)
    with pytest.raises(versions.TooManyVersions):
        versions.approve(records.find(record.job_id), ApprovalRequest(version=1), TAILOR, records)


def test_a_band_for_a_value_not_adjusted_is_refused():
    records = MemoryJobRecords()
    record = measured_job(records)
    banded = MeasurementAdjustment(values={"inseam": 80.0}, errors={"waist": 1.0}, source="t")
    with pytest.raises(versions.InvalidAdjustment, match="not adjusted: waist") as refused:
        versions.adjust(record, banded, USER, records)
    assert refused.value.field == "errors"
