"""The API client against a real HTTP server on 127.0.0.1 that answers scripted sequences:
retries, Retry-After, restarts, the duplicate-job guard of POST /uploads, the retry budget and
the token bucket. A fake clock stands in for sleeping, so nothing waits for real."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from silhouette.client.api_client import (
    ApiClient,
    ApiError,
    ApiUnavailable,
    OutcomeUnknown,
    RetryPolicy,
    TokenBucket,
)
from silhouette.schema import JobOptions

KEY = "key-of-the-test-tenant-0123"
JOB = {"job_id": "j1", "status": "QUEUED"}
CREATED = {"job": JOB, "upload": {"url": "unused", "fields": {}}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeClock:
    """Time that moves only when someone sleeps; `on_sleep` runs after each sleep."""

    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        self._on_sleep()


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # answer nothing until the test ends (the client times out)
    drop: bool = False  # close the connection without an answer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """An HTTP server answering each request with the next scripted reply."""

    def __init__(self, replies: list[Reply], port: int | None = None) -> None:
        self.replies = deque(replies)
        self.received: list[Received] = []
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> ScriptedServer:
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted._answer(self)

            do_POST = do_DELETE = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        self.received.append(
            Received(handler.command, handler.path, dict(handler.headers.items()), body)
        )
        reply = self.replies.popleft()
        if reply.hang:
            self._released.wait(10)
        if reply.hang or reply.drop:
            handler.close_connection = True
            return
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        for name, value in {"Content-Length": str(len(data)), **reply.headers}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(replies: list[Reply], port: int | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(replies, port).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def client(url: str, clock: FakeClock, **options: Any) -> ApiClient:
    return ApiClient(url, KEY, clock=clock, timeout=(2, 2), **options)


def create_upload(api: ApiClient, request_id: str = "req-1") -> dict[str, Any]:
    return api.create_upload("a.jpg", "image/jpeg", JobOptions(), size=3, request_id=request_id)


# Retries -------------------------------------------------------------------------------------


def test_429_is_retried_after_the_seconds_of_its_retry_after(serve):
    throttled = Reply(429, {"error": "throttled", "message": "slow down"}, {"Retry-After": "3"})
    server = serve([throttled, Reply(200, JOB)])
    clock = FakeClock()

    assert client(server.url, clock).job("j1") == JOB

    assert clock.sleeps == [3.0]
    assert [r.path for r in server.received] == ["/jobs/j1", "/jobs/j1"]
    assert server.received[0].headers["x-api-key"] == KEY


def test_503_to_post_uploads_is_retried_with_back_off_and_the_same_request_id(serve):
    unavailable = Reply(503, {"error": "unavailable", "message": "a dependency is busy"})
    server = serve([unavailable, Reply(201, CREATED)])
    clock = FakeClock()

    assert create_upload(client(server.url, clock), request_id="abc123") == CREATED

    (delay,) = clock.sleeps
    assert 0.25 <= delay <= 0.5  # the first back-off, jittered
    assert [r.headers["X-Request-ID"] for r in server.received] == ["abc123", "abc123"]
    assert json.loads(server.received[1].body)["filename"] == "a.jpg"


def test_a_refused_connection_is_retried_until_the_restarted_api_answers(serve):
    port = free_port()  # nothing listens yet: the stack is restarting
    restarted: list[ScriptedServer] = []
    clock = FakeClock(
        on_sleep=lambda: restarted or restarted.append(serve([Reply(201, CREATED)], port))
    )

    # Even POST /uploads: a refused connection certainly created nothing.
    assert create_upload(client(f"http://127.0.0.1:{port}", clock)) == CREATED

    assert len(clock.sleeps) == 1
    assert [r.path for r in restarted[0].received] == ["/uploads"]


def test_a_read_timeout_on_post_uploads_is_not_repeated(serve):
    server = serve([Reply(hang=True), Reply(201, CREATED)])
    clock = FakeClock()
    api = ApiClient(server.url, KEY, clock=clock, timeout=(2, 0.2))

    with pytest.raises(OutcomeUnknown, match="may have been processed"):
        create_upload(api)

    assert len(server.received) == 1 and clock.sleeps == []


def test_a_dropped_connection_on_post_uploads_is_not_repeated(serve):
    server = serve([Reply(drop=True), Reply(201, CREATED)])
    clock = FakeClock()

    with pytest.raises(OutcomeUnknown, match="connection lost"):
        create_upload(client(server.url, clock))

    assert len(server.received) == 1 and clock.sleeps == []


def test_a_dropped_connection_on_get_is_retried(serve):
    server = serve([Reply(drop=True), Reply(200, JOB)])
    clock = FakeClock()

    assert client(server.url, clock).job("j1") == JOB
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_to_post_uploads_is_not_repeated(serve, status):
    server = serve([Reply(status, {"message": "Internal server error"}), Reply(201, CREATED)])
    clock = FakeClock()

    with pytest.raises(OutcomeUnknown) as raised:
        create_upload(client(server.url, clock))

    assert raised.value.status == status
    assert len(server.received) == 1 and clock.sleeps == []


def test_a_read_timeout_on_get_is_retried(serve):
    server = serve([Reply(hang=True), Reply(200, JOB)])
    clock = FakeClock()
    api = ApiClient(server.url, KEY, clock=clock, timeout=(2, 0.2))

    assert api.job("j1") == JOB
    assert len(clock.sleeps) == 1


def test_retries_stop_within_the_total_wait_bound(serve):
    server = serve([Reply(502, {"message": "Bad Gateway"})] * 50)
    clock = FakeClock()
    api = client(server.url, clock, retry=RetryPolicy(max_wait_seconds=10, max_delay_seconds=4))

    with pytest.raises(ApiUnavailable, match=r"GET .*/jobs/j1: 502 Bad Gateway; gave up") as raised:
        api.job("j1")

    assert raised.value.status == 502
    assert 0 < sum(clock.sleeps) <= 10
    assert len(server.received) == len(clock.sleeps) + 1
    assert max(clock.sleeps) <= 4


def test_a_retry_after_beyond_the_bound_gives_up_at_once(serve):
    server = serve([Reply(429, {"error": "throttled"}, {"Retry-After": "600"})])
    clock = FakeClock()

    with pytest.raises(ApiUnavailable, match="429 throttled"):
        client(server.url, clock).job("j1")

    assert clock.sleeps == []


def test_an_unreachable_api_gives_up_with_an_api_error():
    clock = FakeClock()
    api = client(f"http://127.0.0.1:{free_port()}", clock, retry=RetryPolicy(max_wait_seconds=5))

    with pytest.raises(ApiUnavailable, match="connection refused; gave up") as raised:
        api.jobs()

    assert raised.value.status == 0 and sum(clock.sleeps) <= 5


def test_refusals_are_not_retried(serve):
    server = serve([Reply(404, {"error": "not_found", "message": "no job 'j9'"})])
    clock = FakeClock()

    with pytest.raises(ApiError) as raised:
        client(server.url, clock).job("j9")

    assert (raised.value.status, raised.value.error, raised.value.message) == (
        404,
        "not_found",
        "no job 'j9'",
    )
    assert clock.sleeps == []


def test_a_malformed_url_is_an_api_error():
    with pytest.raises(ApiError, match="bad_request"):
        ApiClient("localhost:3000", KEY, clock=FakeClock()).job("j1")


def test_the_job_list_is_paged_with_limit_and_cursor(serve):
    server = serve([Reply(200, {"jobs": [], "next_cursor": None})])

    client(server.url, FakeClock()).jobs(limit=100, cursor="abc")

    assert server.received[0].path == "/jobs?limit=100&cursor=abc"


# Storage -------------------------------------------------------------------------------------


def test_the_photo_upload_is_retried_after_a_storage_error_without_the_api_key(serve, tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8photo")
    server = serve([Reply(503, b"<Error>SlowDown</Error>"), Reply(204, b"")])
    clock = FakeClock()

    client(server.url, clock).upload(
        {"url": f"{server.url}/bucket", "fields": {"key": "uploads/j1"}}, photo, "image/jpeg"
    )

    assert len(clock.sleeps) == 1 and len(server.received) == 2
    assert b"\xff\xd8photo" in server.received[1].body
    assert "x-api-key" not in {name.lower() for name in server.received[1].headers}


def test_an_upload_refused_by_storage_is_an_api_error(serve, tmp_path: Path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    server = serve([Reply(403, b"<Error>AccessDenied</Error>")])

    with pytest.raises(ApiError, match="upload_refused"):
        client(server.url, FakeClock()).upload(
            {"url": server.url, "fields": {}}, photo, "image/jpeg"
        )


def test_a_download_is_retried_after_a_dropped_connection(serve):
    server = serve([Reply(drop=True), Reply(200, b"artifact")])
    clock = FakeClock()

    assert client(server.url, clock).download(f"{server.url}/r/j1/cutout.png") == b"artifact"
    assert len(clock.sleeps) == 1


# Pacing --------------------------------------------------------------------------------------


def usage_plan_accepts(times: list[float], rate: float = 10, burst: float = 20) -> bool:
    """Whether API Gateway's throttle (template.yaml's usage plan) lets every request through."""
    tokens, last = burst, times[0]
    for time in times:
        tokens = min(burst, tokens + (time - last) * rate)
        last = time
        if tokens < 1:
            return False
        tokens -= 1
    return True


def test_the_token_bucket_allows_a_burst_then_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=8, burst=10, clock=clock)

    for _ in range(10):
        bucket.take()
    assert clock.sleeps == []

    bucket.take()
    bucket.take()
    assert clock.sleeps == pytest.approx([1 / 8, 1 / 8])


def test_the_token_bucket_refills_while_idle_but_never_beyond_its_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=8, burst=10, clock=clock)
    for _ in range(10):
        bucket.take()

    clock.time += 60
    for _ in range(10):
        bucket.take()
    assert clock.sleeps == []
    bucket.take()
    assert clock.sleeps == pytest.approx([1 / 8])


def test_a_paced_client_stays_within_the_usage_plan_however_many_requests():
    clock = FakeClock()
    bucket = TokenBucket(rate=8, burst=10, clock=clock)
    sent = []
    for _ in range(1000):
        bucket.take()
        sent.append(clock.now())

    assert usage_plan_accepts(sent)
    assert sent[-1] - sent[0] == pytest.approx(990 / 8)
    assert not usage_plan_accepts([1000.0 + i / 100 for i in range(1000)])  # unpaced: throttled


def test_every_api_request_waits_for_the_bucket(serve):
    server = serve([Reply(200, JOB)] * 5)
    clock = FakeClock()
    api = client(server.url, clock, rate_per_second=2, burst=2)

    for _ in range(5):
        api.job("j1")

    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])
