"""Job ids are 128 random bits as 32 lowercase hex digits: what upload keys expect, and
unguessable (a uuid4 has only 122 random bits: its version digit is always 4)."""

from __future__ import annotations

import re

from silhouette.service import keys
from silhouette.service.records import new_job_id

SAMPLE_SIZE = 200


def test_job_ids_are_32_lowercase_hex_digits_that_upload_keys_accept():
    for _ in range(SAMPLE_SIZE):
        job_id = new_job_id()
        assert re.fullmatch(r"[0-9a-f]{32}", job_id)
        assert keys.job_id_from_upload(keys.upload(job_id)) == job_id


def test_every_digit_of_a_job_id_is_random():
    ids = [new_job_id() for _ in range(SAMPLE_SIZE)]

    assert len(set(ids)) == SAMPLE_SIZE
    # A fixed digit (a uuid4's version at 12, its variant at 16) would be the same in all of
    # them; a random one is the same in all 200 with probability 16**-199.
    for position in range(32):
        assert len({job_id[position] for job_id in ids}) > 1, f"digit {position} is fixed"
