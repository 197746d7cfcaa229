"""A 500-item batch on the embedded stack (small photos, fast mode): it ends, and every item is
accounted for, in the batch's counts, its report and its results archive. The figures (wall
time, items per minute, slowest item) are benchmarks/batch_scale.py's to print."""

from __future__ import annotations

import pytest

from benchmarks.batch_scale import SAMPLES, as_zip, run_batch, small_photos
from tests.conftest import API_KEYS

pytestmark = pytest.mark.e2e

ITEMS = 500
WITH_PEOPLE = {"bus", "zidane"}  # of SAMPLES; the others show none


def shows_people(item: str) -> bool:
    """Items are named <index>-<sample>.jpg."""
    return item.removesuffix(".jpg").split("-", 1)[1] in WITH_PEOPLE


def test_a_500_item_batch_ends_with_every_item_accounted_for(stack, sample):
    assert set(SAMPLES) > WITH_PEOPLE
    photos = small_photos(ITEMS, sample)
    key = next(iter(API_KEYS))

    run = run_batch(stack, key, as_zip(photos), timeout=1800)

    progress = run.progress
    assert (progress["status"], progress["total"], progress["done"]) == ("COMPLETED", ITEMS, ITEMS)
    assert sum(progress["counts"].values()) == ITEMS
    rows = run.report_rows
    assert [row["item"] for row in rows] == [name for name, _ in photos]  # each once, in order
    assert len({row["job_id"] for row in rows}) == ITEMS
    assert {row["status"] for row in rows} <= {"COMPLETED", "REJECTED"}  # none lost or failed
    for row in rows:
        if not shows_people(row["item"]):
            assert (row["status"], row["reason"]) == ("REJECTED", "no person detected"), row
    people = [row for row in rows if shows_people(row["item"])]
    completed = [row for row in people if row["status"] == "COMPLETED"]
    assert len(completed) >= 0.9 * len(people)
    assert all(row["result_file"] in run.archive_names for row in rows)
    assert all(row["cutout_file"] in run.archive_names for row in completed)
