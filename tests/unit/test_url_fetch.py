"""Fetching photos by URL against real local HTTP(S) servers, the address policy with a stubbed
resolver, and the batch CSV of URLs."""

from __future__ import annotations

import datetime
import io
import ipaddress
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import urllib3.util.connection
from PIL import Image

from silhouette.errors import RejectedInput, TransientError
from silhouette.service.url_fetch import (
    DEFAULT_LIMITS,
    FetchLimits,
    MiB,
    fetch_image,
    parse_url_list,
)


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (12, 8), (200, 30, 40))
    image.putpixel((3, 4), (10, 220, 90))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


PNG = _encoded("PNG")
JPEG = _encoded("JPEG")
HUGE = 64 * MiB  # what the endless routes try to send
LOOPBACK = FetchLimits(allow_loopback=True, connect_timeout=1, read_timeout=2, total_timeout=5)


@dataclass
class Recorder:
    """What the server saw: each request's path and headers, and how much the endless routes
    managed to send before the client hung up."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    finished: threading.Event = field(default_factory=threading.Event)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PhotoServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.recorder.requests.append((self.path, dict(self.headers)))
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        name, _, argument = parts.path.strip("/").partition("/")
        getattr(self, "route_" + name.replace("-", "_"), self.route_missing)(argument, query)

    def reply(self, status: int, body: bytes, content_type: str | None, **headers: str) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_missing(self, argument: str, query: dict[str, str]) -> None:
        self.reply(404, b"no such route", "text/plain")

    def route_photo_png(self, argument: str, query: dict[str, str]) -> None:
        self.reply(200, PNG, "image/png")

    def route_photo_jpg(self, argument: str, query: dict[str, str]) -> None:
        self.reply(200, JPEG, "IMAGE/JPEG; charset=binary")

    def route_unsized(self, argument: str, query: dict[str, str]) -> None:
        """The PNG with no Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(PNG)
        self.close_connection = True

    def route_typed(self, argument: str, query: dict[str, str]) -> None:
        content_type = query.get("type")
        extra = {"Content_Encoding": query["encoding"]} if "encoding" in query else {}
        self.reply(200, PNG, content_type, **extra)

    def route_status(self, argument: str, query: dict[str, str]) -> None:
        self.reply(int(argument), b"not the photo", "image/png")

    def route_hops(self, argument: str, query: dict[str, str]) -> None:
        """A chain of `argument` redirects ending at the PNG, cycling through redirect codes."""
        left = int(argument)
        if left == 0:
            self.route_photo_png("", query)
            return
        status = (301, 302, 303, 307, 308)[left % 5]
        self.reply(status, b"", "text/plain", Location=f"/hops/{left - 1}")

    def route_redirect(self, argument: str, query: dict[str, str]) -> None:
        headers = {"Location": query["to"]} if "to" in query else {}
        self.reply(302, b"", "text/plain", **headers)

    def route_endless(self, argument: str, query: dict[str, str]) -> None:
        """An image body that would run to 64 MiB: close-delimited, or chunked (optionally
        with a small, lying Content-Length, which chunked encoding overrides)."""
        chunked = argument == "chunked"
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if "declared" in query:
            self.send_header("Content-Length", query["declared"])
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        block, sent = b"\x89" * 65536, 0
        try:
            while sent < HUGE:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
        except OSError:
            pass
        finally:
            self.server.recorder.sent[self.path] = sent
            self.server.recorder.finished.set()
        self.close_connection = True

    def route_declared_huge(self, argument: str, query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10 * 1024 * MiB))
        self.end_headers()
        self.wfile.write(PNG)
        time.sleep(3)
        self.close_connection = True

    def route_short_body(self, argument: str, query: dict[str, str]) -> None:
        """Claims more bytes than it sends, then hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG) + 5000))
        self.end_headers()
        self.wfile.write(PNG)
        self.close_connection = True

    def route_slow_headers(self, argument: str, query: dict[str, str]) -> None:
        time.sleep(1.5)
        self.route_photo_png("", query)

    def route_drip_body(self, argument: str, query: dict[str, str]) -> None:
        """Headers at once, then a byte every 50 ms for 10 s: never idle long enough to trip a
        read timeout."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()
        self._drip([b"x"] * 200)

    def route_drip_headers(self, argument: str, query: dict[str, str]) -> None:
        """The status line, then a header line every 50 ms for 4 s."""
        lines = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Pad-%d: y\r\n" % n for n in range(80)]
        self._drip([*lines, b"Content-Type: image/png\r\nConnection: close\r\n\r\n", PNG])

    def _drip(self, pieces: list[bytes]) -> None:
        self.close_connection = True
        try:
            for piece in pieces:
                self.wfile.write(piece)
                time.sleep(0.05)
        except OSError:
            pass

    def route_reset(self, argument: str, query: dict[str, str]) -> None:
        """Resets the connection instead of answering."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class PhotoServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.recorder = Recorder()
        self.port = self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up early is what these tests do


def _serve(server: PhotoServer) -> Iterator[PhotoServer]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[PhotoServer]:
    yield from _serve(PhotoServer())


@pytest.fixture
def base(server: PhotoServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _addrinfo(address: str, port: object) -> tuple:
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))
    return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port), 0, 0))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """`dns.names["photos.example"] = ["10.0.0.1"]` (or a callable giving such a list, or an
    error to raise) makes the resolver answer that; `dns.lookups` lists the stubbed names asked
    for."""
    real = socket.getaddrinfo
    stub = SimpleNamespace(names={}, lookups=[])

    def getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host not in stub.names:
            return real(host, port, *args, **kwargs)
        stub.lookups.append(host)
        answer = stub.names[host]
        if isinstance(answer, Exception):
            raise answer
        return [_addrinfo(address, port) for address in (answer() if callable(answer) else answer)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return stub


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The address of every connection urllib3 opens; anything but loopback is refused (as if
    nothing listened there), so no test ever reaches another host."""
    real = urllib3.util.connection.create_connection
    opened: list[str] = []

    def create_connection(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        opened.append(address[0])
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise ConnectionRefusedError(f"test refuses to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return opened


def rejected(url: str, limits: FetchLimits = LOOPBACK) -> str:
    with pytest.raises(RejectedInput) as caught:
        fetch_image(url, limits)
    return caught.value.reason


def timed(call: Callable[[], object]) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


# --- successful fetches ---------------------------------------------------------------------


def test_defaults_are_the_documented_limits():
    limits = FetchLimits()
    assert limits == DEFAULT_LIMITS
    assert (limits.max_bytes, limits.max_redirects, limits.allow_loopback) == (50 * MiB, 3, False)
    assert (limits.connect_timeout, limits.read_timeout, limits.total_timeout) == (5, 20, 30)


def test_fetches_a_real_photo_from_the_allowed_loopback_server(base, server):
    fetched = fetch_image(f"{base}/photo-png", LOOPBACK)
    assert fetched.data == PNG
    assert fetched.content_type == "image/png"
    assert fetched.final_url == f"{base}/photo-png"
    assert Image.open(io.BytesIO(fetched.data)).size == (12, 8)
    [(path, headers)] = server.recorder.requests
    assert headers["Host"] == f"127.0.0.1:{server.port}"


def test_content_type_parameters_and_case_are_ignored(base):
    fetched = fetch_image(f"{base}/photo-jpg", LOOPBACK)
    assert (fetched.content_type, fetched.data) == ("image/jpeg", JPEG)


def test_body_without_content_length_is_read_to_the_end(base):
    assert fetch_image(f"{base}/unsized", LOOPBACK).data == PNG


def test_resolves_once_and_connects_to_the_validated_address_with_the_name_as_host(
    dns, server, connections
):
    # The second answer would rebind the name to a private address: it must never be asked.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    dns.names["photos.example"] = lambda: next(answers)
    fetched = fetch_image(f"http://photos.example:{server.port}/photo-png", LOOPBACK)
    assert fetched.data == PNG
    assert dns.lookups == ["photos.example"]
    assert connections == ["127.0.0.1"]
    [(_, headers)] = server.recorder.requests
    assert headers["Host"] == f"photos.example:{server.port}"


def test_tries_the_next_validated_address_when_one_refuses(dns, server, connections):
    # The server listens on 127.0.0.1 only, so ::1 refuses (or is unavailable).
    dns.names["photos.example"] = ["::1", "127.0.0.1"]
    fetched = fetch_image(f"http://photos.example:{server.port}/photo-png", LOOPBACK)
    assert fetched.data == PNG
    assert connections == ["::1", "127.0.0.1"]


# --- redirects ------------------------------------------------------------------------------


def test_follows_up_to_max_redirects_of_every_kind(base, server):
    fetched = fetch_image(f"{base}/hops/3", LOOPBACK)
    assert fetched.data == PNG
    assert fetched.final_url == f"{base}/hops/0"
    assert server.recorder.paths() == ["/hops/3", "/hops/2", "/hops/1", "/hops/0"]


def test_one_redirect_too_many_is_refused_without_following_it(base, server):
    limits = FetchLimits(allow_loopback=True, max_redirects=2)
    assert "redirects more than 2 times" in rejected(f"{base}/hops/3", limits)
    assert server.recorder.paths() == ["/hops/3", "/hops/2", "/hops/1"]


def test_relative_redirect_is_resolved_against_the_current_url(base):
    fetched = fetch_image(f"{base}/redirect/?to=../photo-png", LOOPBACK)
    assert fetched.final_url == f"{base}/photo-png"
    assert fetched.data == PNG


def test_redirect_to_the_metadata_service_is_refused_before_connecting(base, connections):
    to = quote("http://169.254.169.254/latest/meta-data/", safe="")
    reason = rejected(f"{base}/redirect/?to={to}")
    assert "169.254.169.254" in reason and "link-local" in reason
    assert connections == ["127.0.0.1"]


def test_redirect_to_a_name_resolving_to_a_private_address_is_refused(base, dns, connections):
    dns.names["intranet.example"] = ["10.1.2.3"]
    to = quote("http://intranet.example/photo.png", safe="")
    assert "10.1.2.3" in rejected(f"{base}/redirect/?to={to}")
    assert connections == ["127.0.0.1"]


def test_redirect_to_another_scheme_is_refused(base):
    to = quote("file:///etc/passwd", safe="")
    assert "only http and https" in rejected(f"{base}/redirect/?to={to}")


def test_redirect_without_location_is_refused(base):
    assert "no Location" in rejected(f"{base}/redirect/")


# --- URL and address policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://photos.example/photo.png",
        "file:///etc/passwd",
        "gopher://photos.example/",
        "data:image/png;base64,iVBORw0KGgo=",
        "//photos.example/photo.png",
        "photo.png",
    ],
)
def test_only_http_and_https_are_fetched(url, dns, connections):
    dns.names["photos.example"] = ["93.184.216.34"]
    assert "only http and https" in rejected(url)
    assert dns.lookups == [] and connections == []


@pytest.mark.parametrize(
    "authority", ["user:pass@127.0.0.1:{port}", "user@127.0.0.1:{port}", "@127.0.0.1:{port}"]
)
def test_credentials_in_the_url_are_refused(authority, server):
    url = f"http://{authority.format(port=server.port)}/photo-png"
    assert "credentials" in rejected(url)
    assert server.recorder.requests == []


@pytest.mark.parametrize(
    "url", ["http://photos.example:99999/", "http://photos.example:x/", "http:///photo.png"]
)
def test_urls_without_a_valid_host_or_port_are_refused(url, dns, connections):
    dns.names["photos.example"] = ["93.184.216.34"]
    rejected(url)
    assert connections == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 wrapping 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused_before_connecting_even_with_loopback_allowed(
    address, kind, dns, connections
):
    dns.names["photos.example"] = [address]
    reason = rejected("http://photos.example/photo.png", LOOPBACK)
    shown = ipaddress.ip_address(address)  # ::ffff:10.0.0.1 prints as ::ffff:a00:1 in 3.11
    assert f"resolves to {shown}, which is a {kind} address" in reason
    assert connections == []


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "127.8.9.10", "::ffff:127.0.0.1"])
def test_loopback_is_refused_unless_allowed(address, dns, connections):
    dns.names["photos.example"] = [address]
    assert "loopback" in rejected("http://photos.example/photo.png", DEFAULT_LIMITS)
    assert connections == []


def test_loopback_server_is_refused_by_default(base, server):
    assert "loopback" in rejected(f"{base}/photo-png", DEFAULT_LIMITS)
    assert server.recorder.requests == []


@pytest.mark.parametrize("host", ["10.0.0.1", "[fd00::1]", "[::ffff:a9fe:a9fe]", "2130706433"])
def test_address_literals_are_checked_as_addresses(host, connections):
    # 2130706433 is 127.0.0.1 written as one number, which the resolver accepts.
    rejected(f"http://{host}/photo.png", DEFAULT_LIMITS)
    assert connections == []


def test_one_unsafe_address_among_public_ones_refuses_the_host(dns, connections):
    dns.names["photos.example"] = ["93.184.216.34", "10.0.0.1", "2606:2800:220:1::1"]
    assert "10.0.0.1" in rejected("http://photos.example/photo.png")
    assert connections == []


def test_public_address_passes_the_policy_and_unreachable_is_transient(dns, connections):
    dns.names["photos.example"] = ["93.184.216.34"]
    with pytest.raises(TransientError, match="could not connect"):
        fetch_image("http://photos.example:8080/photo.png", DEFAULT_LIMITS)
    assert connections == ["93.184.216.34"]


def test_unresolvable_host_is_refused(dns):
    dns.names["photos.example"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert "does not resolve" in rejected("http://photos.example/photo.png")


def test_resolver_failing_for_now_is_transient(dns):
    dns.names["photos.example"] = socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    with pytest.raises(TransientError, match="could not resolve"):
        fetch_image("http://photos.example/photo.png", LOOPBACK)


# --- responses -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 410, 204, 206, 304])
def test_client_errors_and_other_statuses_are_refused(status, base):
    assert f"HTTP {status}" in rejected(f"{base}/status/{status}")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_transient(status, base):
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        fetch_image(f"{base}/status/{status}", LOOPBACK)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("type=text/html;%20charset=utf-8", "text/html"),
        ("type=application/octet-stream", "application/octet-stream"),
        ("type=image", "image"),
        ("type=imagex/png", "imagex/png"),
        ("", "no Content-Type"),
    ],
)
def test_non_image_content_types_are_refused(query, shown, base):
    assert f"serves {shown}, not an image" in rejected(f"{base}/typed/?{query}")


def test_compressed_bodies_are_refused(base, server):
    assert "compressed (gzip)" in rejected(f"{base}/typed/?type=image/png&encoding=gzip")
    [(_, headers)] = server.recorder.requests
    assert headers["Accept-Encoding"] == "identity"


def test_declared_size_above_the_limit_is_refused_without_reading(base):
    def fetch() -> None:
        assert "more than the 50 MiB allowed" in rejected(f"{base}/declared-huge")

    assert timed(fetch) < 1.5  # the server holds the body back for 3 s


@pytest.mark.parametrize("route", ["photo-png", "unsized"])
def test_a_photo_of_exactly_max_bytes_passes_and_one_byte_more_does_not(route, base):
    exact = FetchLimits(allow_loopback=True, max_bytes=len(PNG))
    assert fetch_image(f"{base}/{route}", exact).data == PNG
    smaller = FetchLimits(allow_loopback=True, max_bytes=len(PNG) - 1)
    assert f"{len(PNG) - 1} bytes allowed" in rejected(f"{base}/{route}", smaller)


@pytest.mark.parametrize(
    "route", ["endless/close", "endless/chunked", "endless/chunked?declared=1000"]
)
def test_streamed_body_over_the_limit_stops_the_download_early(route, base, server):
    # The last one lies: a small Content-Length that chunked encoding overrides.
    limits = FetchLimits(allow_loopback=True, max_bytes=1 * MiB)
    assert "larger than the 1 MiB allowed" in rejected(f"{base}/{route}", limits)
    assert server.recorder.finished.wait(10)
    [sent] = server.recorder.sent.values()
    # Socket buffers hold a few MiB; reading on would have taken all 64.
    assert sent < HUGE // 2


def test_body_shorter_than_its_content_length_is_transient(base):
    with pytest.raises(TransientError, match="broke off"):
        fetch_image(f"{base}/short-body", LOOPBACK)


def test_connection_reset_is_transient(base):
    with pytest.raises(TransientError, match="broke off"):
        fetch_image(f"{base}/reset", LOOPBACK)


# --- time ----------------------------------------------------------------------------------


def test_silent_server_trips_the_read_timeout_as_transient(base):
    limits = FetchLimits(allow_loopback=True, read_timeout=0.3)

    def fetch() -> None:
        with pytest.raises(TransientError, match="did not answer in time"):
            fetch_image(f"{base}/slow-headers", limits)

    assert timed(fetch) < 1.2


@pytest.mark.parametrize("route", ["drip-body", "drip-headers"])
def test_dripping_server_is_cut_off_at_the_total_timeout(route, base):
    # A byte every 50 ms never trips the 1 s read timeout; only the total deadline stops it.
    limits = FetchLimits(allow_loopback=True, read_timeout=1, total_timeout=0.6)

    def fetch() -> None:
        assert "longer than 0.6 s" in rejected(f"{base}/{route}", limits)

    assert timed(fetch) < 1.5


# --- https ---------------------------------------------------------------------------------


def _certificates(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA (PEM file) and a certificate (and key) it signed for `names`."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key, issuer, issuer_key, *extensions) -> object:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(issuer_key, hashes.SHA256())

    usage = dict.fromkeys(
        ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement"], False
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Silhouette test CA")])
    ca = certificate(
        "Silhouette test CA",
        ca_key,
        ca_name,
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
                **usage,
            ),
            True,
        ),
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(
        names[0],
        key,
        ca_name,
        ca_key,
        (x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_server(tmp_path, monkeypatch, dns) -> Iterator[Callable[[list[str]], SimpleNamespace]]:
    """Starts an HTTPS photo server on 127.0.0.1 whose certificate names `names`, trusted
    through SSL_CERT_FILE, with photos.test resolving to it."""
    stack: list[Iterator[PhotoServer]] = []

    def start(names: list[str]) -> SimpleNamespace:
        ca, cert, key = _certificates(tmp_path, names)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        sni: list[str | None] = []
        context.sni_callback = lambda sock, name, ctx: sni.append(name)
        server = PhotoServer()
        server.socket = context.wrap_socket(server.socket, server_side=True)
        running = _serve(server)
        stack.append(running)
        next(running)
        dns.names["photos.test"] = ["127.0.0.1"]
        return SimpleNamespace(url=f"https://photos.test:{server.port}", server=server, sni=sni)

    yield start
    for running in stack:
        next(running, None)


def test_https_connects_to_the_address_but_verifies_the_certificate_for_the_name(tls_server):
    served = tls_server(["photos.test"])
    fetched = fetch_image(f"{served.url}/photo-png", LOOPBACK)
    assert fetched.data == PNG
    assert served.sni == ["photos.test"]
    [(_, headers)] = served.server.recorder.requests
    assert headers["Host"] == served.url.removeprefix("https://")


def test_https_certificate_for_another_name_is_refused(tls_server):
    served = tls_server(["other.test"])
    assert "no verified TLS connection to photos.test" in rejected(f"{served.url}/photo-png")
    assert served.server.recorder.requests == []


# --- the batch CSV -------------------------------------------------------------------------


def test_csv_rows_with_extra_columns_kept_in_order():
    rows = parse_url_list(
        "\ufeffLabel,ID,Image_URL,Shop\r\n"
        'red dress,a1, https://photos.example/a.jpg ,"Shop, Inc."\r\n'
        '"two\nlines",b2,https://photos.example/b.png,\r\n'
    )
    assert [(row.id, row.image_url, row.problem) for row in rows] == [
        ("a1", "https://photos.example/a.jpg", None),
        ("b2", "https://photos.example/b.png", None),
    ]
    assert rows[0].extra == {"Label": "red dress", "Shop": "Shop, Inc."}
    assert list(rows[0].extra) == ["Label", "Shop"]
    assert rows[1].extra == {"Label": "two\nlines", "Shop": ""}


def test_csv_blank_lines_are_skipped():
    rows = parse_url_list(
        "\n\nid,image_url\n\na,http://x.example/a.png\n  \n,\n\nb,http://x.example/b.png\n"
    )
    assert [row.id for row in rows] == ["a", "b"]


def test_csv_duplicate_and_empty_values_are_reported_per_row():
    rows = parse_url_list(
        "id,image_url\n"
        "a,http://x.example/1.png\n"
        "b,\n"
        ",http://x.example/3.png\n"
        "a,http://x.example/4.png\n"
        "c,http://x.example/5.png,surplus\n"
        "d\n"
    )
    assert [row.problem for row in rows] == [
        None,
        "line 3: image_url is empty",
        "line 4: id is empty",
        "line 5: duplicate id 'a' (first on line 2)",
        "line 6: 3 cells but the header has 2 columns",
        "line 7: image_url is empty",
    ]


def test_csv_row_limit_applies_to_data_rows():
    text = "id,image_url\n" + "".join(f"{n},http://x.example/{n}.png\n\n" for n in range(3))
    assert len(parse_url_list(text, max_rows=3)) == 3
    with pytest.raises(RejectedInput, match="more than 2 rows"):
        parse_url_list(text, max_rows=2)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the CSV is empty"),
        ("\n  \n", "the CSV is empty"),
        ("id,url\na,http://x.example/a.png\n", "missing: image_url"),
        ("name,image_url\na,http://x.example/a.png\n", "missing: id"),
        ("id,image_url,ID\na,b,c\n", "names the column 'id' twice"),
        ("id,image_url,\na,b,c\n", "column 3 of the CSV header has no name"),
        ("id,image_url\n", "a header but no rows"),
        ('id,image_url\na,"http://x.example\n', "malformed"),
        ('id,image_url\na,"http://x.example/a.png\nb,http://x.example/b.png\n', "malformed"),
        ('id,image_url\na,"http://x.example/"a.png\n', "malformed at line 2"),
    ],
)
def test_csv_problems_of_the_whole_file_are_rejected(text, reason):
    with pytest.raises(RejectedInput, match=re.escape(reason)):
        parse_url_list(text)
