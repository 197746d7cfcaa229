"""A Lambda handler for tests/e2e/test_read_only.py: tries to write a file in each directory of
its event (an empty name: the temporary directory) and answers, per directory, "writable" or
the operating system's refusal."""

from __future__ import annotations

import os
import tempfile
from typing import Any


def handler(event: dict[str, str], context: Any) -> dict[str, str]:
    answers = {}
    for name, directory in event.items():
        try:
            with tempfile.NamedTemporaryFile(dir=directory or tempfile.gettempdir()):
                answers[name] = "writable"
        except OSError as error:
            answers[name] = os.strerror(error.errno) if error.errno else str(error)
    return answers
