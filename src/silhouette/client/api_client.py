"""A client of the public HTTP API: what the CLI uses, against `silhouette serve`, the embedded
stack or a deployed stack alike. It needs nothing but the API's URL and a key.

It keeps under the key's usage plan by pacing its own requests (a token bucket), and it rides
out a slow, busy or restarting stack: network errors, 429 and 5xx answers are retried with
exponential back-off and jitter, honouring Retry-After, for a bounded time. Whatever goes
wrong reaches the caller as an `ApiError`, never as an exception of `requests`."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from urllib3.exceptions import NewConnectionError

from silhouette.names import API_KEY_HEADER, REQUEST_ID_HEADER
from silhouette.schema import JobOptions

CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# Just under the usage plan (template.yaml: 10 requests/second, burst 20), so that a client
# alone on its key is never throttled.
DEFAULT_RATE_PER_SECOND = 8.0
DEFAULT_BURST = 10
# Answers that say the request was turned away before anything was done: throttled by the
# gateway, or shed by the API while a dependency is unavailable. Safe to repeat for any method.
NOT_PROCESSED = frozenset({429, 503})
# Network errors worth another try; other `requests` errors (a malformed URL...) never heal.
NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class ApiError(Exception):
    """A request to the API or storage did not succeed; `message` says why."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


class ApiUnavailable(ApiError):
    """The API or storage stayed unreachable or busy for the whole retry budget. `status` is
    the last answer's, or 0 if there was none."""


class OutcomeUnknown(ApiError):
    """A request that is not safe to repeat got no clear answer: it may have been processed."""


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Monotonic seconds and real sleeping (tests inject a clock that only pretends)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class TokenBucket:
    """Paces requests as API Gateway throttles them: `burst` at once, then `rate` per second.
    `take` waits (on the clock) until a request may go."""

    def __init__(self, rate: float, burst: int, clock: Clock = SYSTEM_CLOCK) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock.now()
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            now = self._clock.now()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            if self._tokens < 0:
                # Wait for the token borrowed; the next refill counts the time waited.
                self._clock.sleep(-self._tokens / self.rate)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter, waiting at least what a Retry-After asks for, until
    the next wait would take a request past `max_wait_seconds` since its first try."""

    max_wait_seconds: float = 120.0
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 15.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.max_delay_seconds, self.first_delay_seconds * 2**attempt)
        # Half fixed, half random: clients that failed together do not retry together.
        jittered = random.uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        rate_per_second: float = DEFAULT_RATE_PER_SECOND,
        burst: int = DEFAULT_BURST,
        clock: Clock = SYSTEM_CLOCK,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = requests.Session()
        self._api.headers[API_KEY_HEADER] = api_key
        # Presigned URLs carry their own permission; the API key must not travel to storage.
        self._storage = requests.Session()
        self._retry = retry or RetryPolicy()
        self._bucket = TokenBucket(rate_per_second, burst, clock)
        self._clock = clock
        self._timeout = timeout

    # The API ------------------------------------------------------------------------------

    def create_upload(
        self,
        filename: str,
        content_type: str,
        options: JobOptions,
        size: int | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        request = {
            "filename": filename,
            "content_type": content_type,
            "options": options.model_dump(),
            "size": size,
        }
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        return self._call("POST", "/uploads", json=request, headers=headers)

    def jobs(self, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """A page of the caller's jobs, newest first: `{"jobs": [...], "next_cursor": ...}`."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._call("GET", "/jobs", params=params)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def result(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/result")

    def delete(self, job_id: str) -> None:
        self._call("DELETE", f"/jobs/{job_id}")

    def create_batch(
        self,
        source: str,
        options: JobOptions,
        *,
        size: int | None = None,
        concurrency: int | None = None,
        photos: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A WAITING batch (`batch`) and where its source goes: the form for a ZIP or CSV of
        `size` bytes (`upload`), or for `source="photos"` one form per photo described in
        `photos` ({filename, content_type, size}), in their order (`photos`)."""
        request = {
            "source": source,
            "options": options.model_dump(),
            "size": size,
            "concurrency": concurrency,
            "photos": photos,
        }
        # Only what is set: `photos` is a field of the photos mode alone.
        body = {name: value for name, value in request.items() if value is not None}
        return self._call("POST", "/batches", json=body)

    def batch(self, batch_id: str) -> dict[str, Any]:
        """Where the batch stands: its status and its items counted per status."""
        return self._call("GET", f"/batches/{batch_id}")

    def batch_report(self, batch_id: str) -> dict[str, Any]:
        """Links to a finished batch's report CSV and results ZIP (409 until it has ended)."""
        return self._call("GET", f"/batches/{batch_id}/report")

    # Storage ------------------------------------------------------------------------------

    def upload(self, form: dict[str, Any], file: Path, content_type: str) -> None:
        """Send a photo, or a batch's ZIP or CSV, with a presigned POST from `create_upload` or
        `create_batch`. Repeating it is safe: it writes the same object again, and a job's
        analysis (or a batch) starts once."""
        response = self._send(
            self._storage,
            "POST",
            form["url"],
            repeatable=True,
            paced=False,
            data=form["fields"],
            files={"file": (file.name, file.read_bytes(), content_type)},
        )
        if response.status_code >= 300:
            raise ApiError(response.status_code, "upload_refused", response.text[:500])

    def download(self, url: str) -> bytes:
        """An artifact, from a presigned GET of the result."""
        response = self._send(self._storage, "GET", url, repeatable=True, paced=False)
        if response.status_code >= 300:
            raise ApiError(response.status_code, "download_failed", response.text[:500])
        return response.content

    def download_to(self, url: str, path: Path) -> None:
        """A large download (a batch's results) from a presigned GET, streamed into `path`: it
        appears there whole or not at all."""
        response = self._send(self._storage, "GET", url, repeatable=True, paced=False, stream=True)
        with response:
            if response.status_code >= 300:
                raise ApiError(response.status_code, "download_failed", response.text[:500])
            partial = path.with_name(f"{path.name}.part")
            try:
                with partial.open("wb") as file:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                        file.write(chunk)
            except NETWORK_ERRORS as error:
                partial.unlink(missing_ok=True)
                what = f"GET {url.split('?')[0]}"
                raise ApiError(0, "download_failed", f"{what}: {_network_failure(error)}") from None
            partial.replace(path)

    # Sending ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        # POSTs are unsafe to repeat: every one that is processed creates a job or a batch.
        repeatable = method != "POST"
        url = f"{self.base_url}{path}"
        response = self._send(self._api, method, url, repeatable=repeatable, paced=True, **kwargs)
        if response.status_code >= 400:
            raise _api_error(response)
        return response.json() if response.content else None

    def _send(
        self,
        session: requests.Session,
        method: str,
        url: str,
        *,
        repeatable: bool,
        paced: bool,
        **kwargs: Any,
    ) -> requests.Response:
        """The first answer that is not worth retrying. A request that is not `repeatable` is
        only retried when it certainly was not processed (connection refused, 429, 503)."""
        what = f"{method} {url.split('?')[0]}"
        started = self._clock.now()
        attempt = 0
        while True:
            if paced:
                self._bucket.take()
            outcome = self._attempt(session, method, url, what, repeatable, **kwargs)
            if isinstance(outcome, requests.Response):
                return outcome
            self._back_off(what, outcome, attempt, started)
            attempt += 1

    def _attempt(
        self,
        session: requests.Session,
        method: str,
        url: str,
        what: str,
        repeatable: bool,
        **kwargs: Any,
    ) -> requests.Response | _Trouble:
        try:
            response = session.request(method, url, timeout=self._timeout, **kwargs)
        except NETWORK_ERRORS as error:
            if not (repeatable or _never_sent(error)):
                # A timeout or a dropped connection: the POST may have created a job already.
                raise _outcome_unknown(what, 0, _network_failure(error)) from None
            return _Trouble(0, _network_failure(error))
        except requests.RequestException as error:
            raise ApiError(0, "bad_request", f"{what}: {error}") from None
        status = response.status_code
        if status in NOT_PROCESSED or (repeatable and status >= 500):
            return _Trouble(status, _answer(response), _retry_after(response))
        if status >= 500:
            # 500, 502 or 504 to a POST: the job may exist already (a gateway timeout does not
            # stop the function), so a second try could create a second one.
            raise _outcome_unknown(what, status, _answer(response))
        return response

    def _back_off(self, what: str, trouble: _Trouble, attempt: int, started: float) -> None:
        """Sleep before the next attempt, or give up if that would exceed the retry budget."""
        delay = self._retry.delay(attempt, trouble.retry_after)
        waited = self._clock.now() - started
        if waited + delay > self._retry.max_wait_seconds:
            raise ApiUnavailable(
                trouble.status,
                "unavailable",
                f"{what}: {trouble.problem}; gave up after {attempt + 1} attempt(s) in "
                f"{waited:.0f}s",
            )
        self._clock.sleep(delay)


@dataclass(frozen=True)
class _Trouble:
    """Why an attempt is worth repeating: its answer's status (0 if none) and what went wrong."""

    status: int
    problem: str
    retry_after: float | None = None


def _outcome_unknown(what: str, status: int, problem: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        status,
        "outcome_unknown",
        f"{what}: {problem}; not repeated, as it may have been processed "
        "(see GET /jobs before trying again)",
    )


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the connection could not even be made, so the server cannot have acted."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None
    return isinstance(getattr(cause, "reason", None), NewConnectionError)


def _network_failure(error: requests.RequestException) -> str:
    if isinstance(error, requests.ConnectTimeout):
        return "could not connect in time"
    if isinstance(error, requests.ReadTimeout):
        return "no answer in time"
    if _never_sent(error):
        return "connection refused"
    return "connection lost"


def _answer(response: requests.Response) -> str:
    body = _json_body(response)
    return f"{response.status_code} {body.get('error') or response.reason}"


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (the API and gateway never send the HTTP-date form)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _api_error(response: requests.Response) -> ApiError:
    body = _json_body(response)
    return ApiError(
        response.status_code,
        body.get("error", "error"),
        body.get("message", response.text[:200]),
    )
