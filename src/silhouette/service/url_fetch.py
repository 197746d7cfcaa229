"""Fetching one photo by URL, and reading the CSV of URLs a batch can be.

The URL comes from the client, so it is hostile until proven otherwise: it may name the
instance metadata service, a private service, or a server that never stops sending. So
`fetch_image` resolves the host once, refuses unless every address is public, connects to that
very address (a second DNS answer cannot rebind it), follows redirects itself with the same
checks at every hop, and bounds the size and the time of the whole fetch."""

from __future__ import annotations

import contextlib
import csv
import io
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urljoin, urlsplit

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Timeout

from silhouette.errors import RejectedInput, TransientError

MiB = 1024 * 1024
_CHUNK = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Besides 5xx: the server asks us to come back later.
_RETRYABLE_STATUSES = frozenset({408, 429})
_USER_AGENT = "silhouette-url-fetch/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Neither is_private nor is_global covers shared address space in Python 3.11.
_CARRIER_GRADE_NAT = ipaddress.IPv4Network("100.64.0.0/10")
# Well-known NAT64 prefix: the last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchLimits:
    """How far one fetch may go; the defaults keep a Lambda safe from huge or slow servers."""

    max_bytes: int = 50 * MiB
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    # For the whole fetch, redirects included: read timeouts alone restart on every byte.
    total_timeout: float = 30.0
    max_redirects: int = 3
    # Lets tests serve photos from 127.0.0.1; private and other ranges stay refused even then.
    allow_loopback: bool = False

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes must be positive and max_redirects not negative")
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ValueError("timeouts must be positive")


DEFAULT_LIMITS = FetchLimits()


@dataclass(frozen=True)
class FetchedImage:
    """The photo's bytes and where they finally came from, after any redirects."""

    final_url: str
    content_type: str  # the media type, lower case, without parameters: "image/jpeg"
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class UrlRow:
    """One data row of a batch CSV; `problem` says why it cannot be fetched (None: it can)."""

    id: str
    image_url: str
    extra: dict[str, str]
    problem: str | None = None


def check_endpoint(url: str, what: str, allow_loopback: bool = False) -> None:
    """RejectedInput unless `url` is an https URL (http too on loopback, when allowed) whose
    host resolves to public addresses only: for URLs the service will call, such as webhooks.
    (Delivery re-resolves the name: this turns away mistakes and plain probes.)"""
    target = _Target.parse(url, what)
    addresses = _resolve(target, allow_loopback, what)
    if target.scheme != "https" and not all(address.is_loopback for address in addresses):
        raise RejectedInput(f"the {what} must be https")


def fetch_image(url: str, limits: FetchLimits = DEFAULT_LIMITS) -> FetchedImage:
    """The photo at `url`. RejectedInput when the URL, its addresses or its response break the
    policy (or the fetch outlasts total_timeout); TransientError when a retry may succeed."""
    deadline = _Deadline(limits.total_timeout)
    try:
        for _ in range(limits.max_redirects + 1):
            target = _Target.parse(url)
            addresses = _resolve(target, limits.allow_loopback)
            try:
                outcome = _exchange(url, target, addresses, limits, deadline)
            except (HTTPError, OSError) as error:
                raise _network_failure(error, target, limits, deadline) from error
            if isinstance(outcome, FetchedImage):
                return outcome
            url = outcome
        raise RejectedInput(f"the photo URL redirects more than {limits.max_redirects} times")
    finally:
        deadline.close()


@dataclass(frozen=True)
class _Target:
    """The parts of an http(s) URL a request needs; `host` is lower-case ASCII, unbracketed."""

    scheme: str
    host: str
    port: int
    request_target: str
    host_header: str

    @classmethod
    def parse(cls, url: str, what: str = "photo URL") -> _Target:
        if any(char.isspace() or not char.isprintable() for char in url):
            raise RejectedInput(f"the {what} contains spaces or control characters")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise RejectedInput(
                f"only http and https {what}s are allowed, not "
                + (f"{scheme}:" if scheme else "a URL without a scheme")
            )
        if "@" in parts.netloc:
            raise RejectedInput(f"{what}s with credentials (user:password@) are refused")
        try:
            port = parts.port
        except ValueError as error:
            raise RejectedInput(f"the {what} has an invalid port") from error
        host = parts.hostname or ""
        if not host or "%" in host or port == 0:
            raise RejectedInput(f"the {what} has no valid host")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as error:
                raise RejectedInput(f"the {what}'s host {host!r} is not a valid name") from error
        default_port = 443 if scheme == "https" else 80
        authority = f"[{host}]" if ":" in host else host
        if port not in (None, default_port):
            authority = f"{authority}:{port}"
        path = parts.path or "/"
        return cls(
            scheme=scheme,
            host=host,
            port=port or default_port,
            request_target=f"{path}?{parts.query}" if parts.query else path,
            host_header=authority,
        )


def _resolve(target: _Target, allow_loopback: bool, what: str = "photo URL") -> list[IPAddress]:
    """Every address the host resolves to, refused unless each one is public: a host with one
    private answer among public ones could be steered to it."""
    try:
        answers = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TransientError(f"could not resolve {target.host} just now") from error
        raise RejectedInput(f"the {what}'s host {target.host} does not resolve") from error
    except UnicodeError as error:
        raise RejectedInput(f"the {what}'s host {target.host!r} is not a valid name") from error
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RejectedInput(f"the {what}'s host {target.host} has no IP address")
    for address in addresses:
        kind = _unsafe_kind(address, allow_loopback)
        if kind is not None:
            named = "" if target.host == str(address) else f" resolves to {address}, which"
            raise RejectedInput(
                f"the {what}'s host {target.host}{named} is a {kind} address; "
                "only public internet addresses are allowed"
            )
    return addresses


def _unsafe_kind(address: IPAddress, allow_loopback: bool) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _unsafe_kind(address.ipv4_mapped, allow_loopback)
        embedded = address.sixtofour
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (kind := _unsafe_kind(embedded, False)) is not None:
            return kind
        if address.is_site_local:
            return "site-local"
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.version == 4 and address in _CARRIER_GRADE_NAT:
        return "carrier-grade NAT"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _exchange(
    url: str,
    target: _Target,
    addresses: list[IPAddress],
    limits: FetchLimits,
    deadline: _Deadline,
) -> FetchedImage | str:
    """One request: the photo, or the URL a redirect points to."""
    pool, response = _open(target, addresses, limits, deadline)
    try:
        if deadline.expired:  # the deadline shut the socket: the headers may be cut short
            raise _too_slow(limits)
        status = response.status
        if status in _REDIRECT_STATUSES:
            location = response.headers.get("Location", "").strip()
            if not location:
                raise RejectedInput(f"{target.host} answered HTTP {status} with no Location")
            return urljoin(url, location)
        if status != 200:
            message = f"{target.host} answered HTTP {status} for the photo URL"
            if status >= 500 or status in _RETRYABLE_STATUSES:
                raise TransientError(message)
            raise RejectedInput(message)
        content_type = _image_type(response)
        _check_declared_size(response, limits.max_bytes)
        data = _read_body(response, limits, deadline)
        return FetchedImage(final_url=url, content_type=content_type, data=data)
    finally:
        # Closes the connection: whatever the server still wants to send is never read.
        response.close()
        pool.close()


def _open(
    target: _Target, addresses: list[IPAddress], limits: FetchLimits, deadline: _Deadline
) -> tuple[HTTPConnectionPool, BaseHTTPResponse]:
    """A pool connected to one of the validated addresses (the next one when connecting
    fails) and the response's headers; redirects are never followed here."""
    failure: ConnectTimeoutError | None = None
    for address in addresses:
        if deadline.expired:
            break
        pool = _pool(target, address, limits, deadline)
        try:
            response = pool.urlopen(
                "GET",
                target.request_target,
                headers={
                    "Host": target.host_header,
                    "User-Agent": _USER_AGENT,
                    "Accept": "image/*",
                    # Compressed bodies would make max_bytes count the wire, not the photo.
                    "Accept-Encoding": "identity",
                },
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                release_conn=False,
            )
        except ConnectTimeoutError as error:  # also NewConnectionError: nothing was sent
            pool.close()
            failure = error
            continue
        except BaseException:
            pool.close()
            raise
        return pool, response
    if failure is None:
        raise _too_slow(limits)
    raise failure


def _pool(
    target: _Target, address: IPAddress, limits: FetchLimits, deadline: _Deadline
) -> HTTPConnectionPool:
    remaining = deadline.remaining()
    timeout = Timeout(
        connect=min(limits.connect_timeout, remaining), read=min(limits.read_timeout, remaining)
    )
    if target.scheme == "https":
        # Connect to the IP, but verify the certificate for the name (and send it as SNI).
        return _HTTPSPool(
            str(address),
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            assert_hostname=target.host,
            server_hostname=target.host,
            deadline=deadline,
        )
    return _HTTPPool(
        str(address), target.port, timeout=timeout, maxsize=1, retries=False, deadline=deadline
    )


def _image_type(response: BaseHTTPResponse) -> str:
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    if kind != "image" or not subtype:
        raise RejectedInput(
            f"the photo URL serves {media_type or 'no Content-Type'}, not an image (image/*)"
        )
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise RejectedInput(f"the photo URL sends the image compressed ({encoding})")
    return media_type


def _check_declared_size(response: BaseHTTPResponse, max_bytes: int) -> None:
    declared = response.headers.get("Content-Length")
    if declared is None:
        return
    values = {value.strip() for value in declared.split(",")}
    value = values.pop()
    if values or not (value.isascii() and value.isdigit()):
        raise RejectedInput(f"the photo URL sends an invalid Content-Length ({declared})")
    if int(value) > max_bytes:
        raise RejectedInput(
            f"the photo is {int(value)} bytes, more than the {_bytes(max_bytes)} allowed"
        )


def _read_body(response: BaseHTTPResponse, limits: FetchLimits, deadline: _Deadline) -> bytes:
    """The body, read no further than one byte past max_bytes, whatever Content-Length says."""
    body = bytearray()
    while True:
        want = min(_CHUNK, limits.max_bytes + 1 - len(body))
        chunk = response.read(want, decode_content=False)
        if not chunk:
            break
        body += chunk
        if len(body) > limits.max_bytes:
            raise RejectedInput(f"the photo is larger than the {_bytes(limits.max_bytes)} allowed")
    if deadline.expired:  # the deadline shut the socket: the end of the body was not the end
        raise _too_slow(limits)
    return bytes(body)


def _network_failure(
    error: Exception, target: _Target, limits: FetchLimits, deadline: _Deadline
) -> Exception:
    """The project's error for a failed exchange: transient when a retry may succeed."""
    if deadline.expired:
        return _too_slow(limits)
    host = target.host
    if isinstance(error, SSLError):
        return RejectedInput(f"no verified TLS connection to {host}: {error}")
    if isinstance(error, NewConnectionError):
        return TransientError(f"could not connect to {host}")
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return TransientError(f"{host} did not answer in time")
    if isinstance(error, (ProtocolError, OSError)):
        return TransientError(f"the connection to {host} broke off: {error}")
    return RejectedInput(f"{host} sent an invalid HTTP response: {error}")


def _too_slow(limits: FetchLimits) -> RejectedInput:
    return RejectedInput(f"the photo took longer than {limits.total_timeout:g} s to download")


def _bytes(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


class _Deadline:
    """Shuts down every socket of a fetch when total_timeout is up, so no phase (connect, TLS,
    headers, body) can be dragged out by a server sending a byte now and then."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        # A duplicate: its descriptor stays ours, so shutting it down later can never hit a
        # socket that reused a descriptor number urllib3 has meanwhile closed.
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self._fired:
                _shut(duplicate)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                _shut(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.shutdown(socket.SHUT_RDWR)  # wakes any blocked read, in any thread


class _WatchedHTTPConnection(HTTPConnection):
    """Hands each new socket to the fetch's deadline."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._deadline.watch(sock)
        return sock


# The MRO puts HTTPSConnection after the watching class, so TLS wraps the watched socket.
class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def parse_url_list(text: str | TextIO, max_rows: int = 10_000) -> list[UrlRow]:
    """The rows of a batch CSV, given whole or as a stream opened with newline="" (header with
    id and image_url, any extra columns carried in order). Problems of one row are reported on
    it; a broken file is RejectedInput."""
    lines = io.StringIO(text.removeprefix("\ufeff"), newline="") if isinstance(text, str) else text
    # Strict: an unclosed quote would otherwise swallow the rest of the file into one cell.
    reader = csv.reader(lines, strict=True)
    rows: list[UrlRow] = []
    try:
        header = _Header.read(reader)
        first_line: dict[str, int] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == max_rows:
                raise RejectedInput(f"the CSV has more than {max_rows} rows")
            rows.append(header.row(cells, reader.line_num, first_line))
    except csv.Error as error:
        raise RejectedInput(f"the CSV is malformed at line {reader.line_num}: {error}") from error
    if not rows:
        raise RejectedInput("the CSV has a header but no rows")
    return rows


@dataclass(frozen=True)
class _Header:
    width: int
    id_column: int
    url_column: int
    extra_columns: tuple[tuple[int, str], ...]

    @classmethod
    def read(cls, reader: Any) -> _Header:
        names = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if names is None:
            raise RejectedInput("the CSV is empty; it needs a header with id and image_url")
        names = [name.strip() for name in names]
        lowered = [name.lower() for name in names]
        for number, name in enumerate(lowered, start=1):
            if not name:
                raise RejectedInput(f"column {number} of the CSV header has no name")
            if lowered.count(name) > 1:
                raise RejectedInput(f"the CSV header names the column {name!r} twice")
        missing = [name for name in ("id", "image_url") if name not in lowered]
        if missing:
            raise RejectedInput(
                f"the CSV header needs the columns id and image_url; missing: {', '.join(missing)}"
            )
        id_column, url_column = lowered.index("id"), lowered.index("image_url")
        extras = tuple(
            (index, name)
            for index, name in enumerate(names)
            if index not in (id_column, url_column)
        )
        return cls(len(names), id_column, url_column, extras)

    def row(self, cells: list[str], line: int, first_line: dict[str, int]) -> UrlRow:
        problems = []
        if len(cells) > self.width:
            problems.append(f"{len(cells)} cells but the header has {self.width} columns")
        cells = cells + [""] * (self.width - len(cells))
        row_id, url = cells[self.id_column].strip(), cells[self.url_column].strip()
        if not row_id:
            problems.append("id is empty")
        elif row_id in first_line:
            problems.append(f"duplicate id {row_id!r} (first on line {first_line[row_id]})")
        else:
            first_line[row_id] = line
        if not url:
            problems.append("image_url is empty")
        return UrlRow(
            id=row_id,
            image_url=url,
            extra={name: cells[index] for index, name in self.extra_columns},
            problem=f"line {line}: {'; '.join(problems)}" if problems else None,
        )
