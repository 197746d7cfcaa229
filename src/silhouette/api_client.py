"""A client of the public HTTP API: what the CLI uses, against `silhouette serve`, the embedded
stack or a deployed stack alike. It needs nothing but the API's URL and a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from silhouette.api import API_KEY_HEADER
from silhouette.schema import JobOptions

TIMEOUT_SECONDS = 60


class ApiError(Exception):
    """The API refused a request; `message` is its explanation."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


class ApiClient:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers[API_KEY_HEADER] = api_key

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._session.request(
            method, f"{self.base_url}{path}", timeout=TIMEOUT_SECONDS, **kwargs
        )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise ApiError(
                response.status_code,
                body.get("error", "error"),
                body.get("message", response.text[:200]),
            )
        return response.json() if response.content else None

    def create_upload(
        self, filename: str, content_type: str, options: JobOptions, size: int | None = None
    ) -> dict[str, Any]:
        request = {
            "filename": filename,
            "content_type": content_type,
            "options": options.model_dump(),
            "size": size,
        }
        return self._call("POST", "/uploads", json=request)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def result(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/result")

    def delete(self, job_id: str) -> None:
        self._call("DELETE", f"/jobs/{job_id}")


def upload_file(form: dict[str, Any], photo: Path, content_type: str) -> None:
    """Send the photo with a presigned POST from `create_upload` (no API key: the form is the
    permission)."""
    response = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": (photo.name, photo.read_bytes(), content_type)},
        timeout=TIMEOUT_SECONDS,
    )
    if response.status_code >= 300:
        raise ApiError(response.status_code, "upload_refused", response.text[:500])


def download(url: str) -> bytes:
    response = requests.get(url, timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.content
