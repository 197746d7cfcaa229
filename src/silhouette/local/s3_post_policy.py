"""The embedded stack's S3 request authorization: the one place where it checks presigned
requests as S3 does, because moto checks neither signatures nor POST policies.

A browser-style upload (a multipart/form-data POST to the bucket) is stored only if S3 would
store it: the form carries a policy and a SigV4 signature of it made with the key pair the stack
gives SDKs; the policy has not expired; every condition holds (`{"field": value}`, `["eq",
"$field", value]`, `["starts-with", "$field", prefix]`, `["content-length-range", min, max]` on
the file's size); and every form field is covered by a condition, but for those S3 exempts
(x-amz-signature, policy, file, x-ignore-*). A presigned URL (SigV4 query-string
authentication, any method) is served only before X-Amz-Date + X-Amz-Expires and with a valid
signature. SigV2, which S3 refuses for buckets created after 2020-06-24, is refused too.
Refusals are S3's: its status and XML error body; nothing is stored and no event fires.

Signing keys and canonical requests come from botocore's own signers. The hooks wrap moto
internals (S3Response._bucket_response_post and _key_response) and are pinned to the moto
version of the stack's other hooks (lambda_runtime)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import moto
from botocore.auth import S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.s3.responses import S3Response

from silhouette.local.lambda_runtime import MOTO_VERSION

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# Form fields S3 accepts without a policy condition (besides x-ignore-* ones).
UNCONDITIONED_FIELDS = frozenset({"x-amz-signature", "policy", "file"})
IGNORED_FIELD_PREFIX = "x-ignore-"
SIGNED_FORM_FIELDS = ("x-amz-credential", "x-amz-date", "x-amz-signature")
SIGNED_QUERY_PARAMETERS = (
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
PATCHED_METHODS = ("_bucket_response_post", "_key_response")

Response = tuple[int, dict[str, str], bytes]


class Refusal(Exception):
    """S3's answer instead of storing or serving the object."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Response:
        error = ElementTree.Element("Error")
        fields = {"Code": self.code, "Message": self.message, **self.details}
        for name, value in {**fields, "RequestId": secrets.token_hex(8).upper()}.items():
            ElementTree.SubElement(error, name).text = str(value)
        body = ElementTree.tostring(error, encoding="utf-8", xml_declaration=True)
        return self.status, {"Content-Type": "application/xml"}, body


def _access_denied(message: str) -> Refusal:
    return Refusal(403, "AccessDenied", message)


def _policy_refusal(reason: str) -> Refusal:
    return _access_denied(f"Invalid according to Policy: {reason}")


def _unsupported_signature() -> Refusal:
    """S3's answer to SigV2, for buckets created after 2020-06-24."""
    return Refusal(
        400,
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. "
        f"Please use {SIGV4_ALGORITHM}.",
    )


@dataclass(frozen=True)
class CredentialScope:
    """`<access key>/<yyyymmdd>/<region>/<service>/aws4_request`, which names the signing key."""

    access_key: str
    date: str
    region: str
    service: str

    @classmethod
    def parse(cls, credential: str, timestamp: str) -> CredentialScope:
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or parts[1] != timestamp[:8]:
            raise Refusal(
                400, "InvalidArgument", f"Invalid credential {credential!r} for date {timestamp!r}"
            )
        return cls(*parts[:4])

    def signer(self, secret_keys: Mapping[str, str], signer_class: type[SigV4Auth]) -> SigV4Auth:
        secret_key = secret_keys.get(self.access_key)
        if secret_key is None:
            raise Refusal(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=self.access_key,
            )
        return signer_class(Credentials(self.access_key, secret_key), self.service, self.region)


def _verify(signer: SigV4Auth, string_to_sign: str, request: AWSRequest, signature: str) -> None:
    """`request.context["timestamp"]` dates the signing key, as botocore's signers expect."""
    if not hmac.compare_digest(signer.signature(string_to_sign, request), signature):
        raise Refusal(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )


# POST uploads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One policy condition: `operator` is eq, starts-with or content-length-range."""

    operator: str
    field: str  # as the policy spells it; form fields match it whatever their case
    operand: Any

    @classmethod
    def parse(cls, condition: Any) -> Condition:
        """ValueError for anything but the three kinds of condition."""
        if isinstance(condition, dict) and len(condition) == 1:
            ((field, value),) = condition.items()
            return cls("eq", field, value)
        if isinstance(condition, list) and len(condition) == 3:
            operator, subject, operand = condition
            operator = str(operator).lower()
            if operator == "content-length-range":
                return cls(operator, "", (int(subject), int(operand)))
            if operator in ("eq", "starts-with") and str(subject).startswith("$"):
                return cls(operator, subject[1:], operand)
        raise ValueError(f"Invalid Condition: {json.dumps(condition)}")

    def check(self, fields: Mapping[str, str]) -> None:
        value, expected = fields.get(self.field.lower(), ""), str(self.operand)
        holds = value == expected if self.operator == "eq" else value.startswith(expected)
        if not holds:
            shown = json.dumps([self.operator, f"${self.field}", self.operand])
            raise _policy_refusal(f"Policy Condition failed: {shown}")

    def check_length(self, size: int) -> None:
        smallest, largest = self.operand
        if size > largest:
            raise Refusal(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=size,
                MaxSizeAllowed=largest,
            )
        if size < smallest:
            raise Refusal(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=size,
                MinSizeAllowed=smallest,
            )


def check_post_upload(
    form: Mapping[str, str],
    file_size: int,
    bucket: str,
    secret_keys: Mapping[str, str],
    now: datetime,
) -> None:
    """Raise the Refusal S3 would answer to this POST form (`form`: its fields but the file),
    unless S3 would store the file. `secret_keys` maps access key id -> secret access key."""
    fields = {name.lower(): value for name, value in form.items()}
    if "policy" not in fields:
        raise _access_denied("Access Denied")  # an anonymous upload, and the bucket is private
    if fields.get("x-amz-algorithm") != SIGV4_ALGORITHM:
        raise _unsupported_signature()
    for name in SIGNED_FORM_FIELDS:
        if name not in fields:
            raise Refusal(
                400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'."
            )
    timestamp = fields["x-amz-date"]
    signer = CredentialScope.parse(fields["x-amz-credential"], timestamp).signer(
        secret_keys, SigV4Auth
    )
    dated = AWSRequest(method="POST")
    dated.context["timestamp"] = timestamp
    # The string to sign of a POST policy is the base64 policy itself.
    _verify(signer, fields["policy"], dated, fields["x-amz-signature"])
    expiration, conditions = _decode_policy(fields["policy"])
    if expiration <= now:
        raise _policy_refusal("Policy expired.")
    checked = {**fields, "bucket": bucket}  # the bucket is the one posted to, not a field
    for condition in conditions:
        if condition.operator != "content-length-range":
            condition.check(checked)
    covered = {condition.field.lower() for condition in conditions}
    extra = sorted(
        name
        for name in fields
        if name not in covered | UNCONDITIONED_FIELDS and not name.startswith(IGNORED_FIELD_PREFIX)
    )
    if extra:
        raise _policy_refusal(f"Extra input fields: {', '.join(extra)}")
    for condition in conditions:
        if condition.operator == "content-length-range":
            condition.check_length(file_size)


def _decode_policy(policy: str) -> tuple[datetime, list[Condition]]:
    """The policy's expiration and conditions; S3's refusal of a malformed one."""
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
        expiration = datetime.fromisoformat(document["expiration"])
        conditions = [Condition.parse(condition) for condition in document["conditions"]]
    except (ValueError, KeyError, TypeError) as error:  # binascii.Error is a ValueError
        raise Refusal(400, "InvalidPolicyDocument", f"Invalid Policy: {error}") from None
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return expiration, conditions


# Presigned URLs -----------------------------------------------------------------------------


def check_presigned_url(
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    secret_keys: Mapping[str, str],
    now: datetime,
) -> None:
    """Raise the Refusal S3 would answer to a request authenticated by its (decoded) `query`;
    requests with no signature in the query are left alone (SDK calls sign a header)."""
    parameters = dict(query)
    if "Signature" in parameters and "X-Amz-Signature" not in parameters:
        raise _unsupported_signature()  # SigV2 query-string authentication
    if not {"X-Amz-Algorithm", "X-Amz-Signature"} & parameters.keys():
        return
    if parameters.get("X-Amz-Algorithm") != SIGV4_ALGORITHM or not all(
        name in parameters for name in SIGNED_QUERY_PARAMETERS
    ):
        raise Refusal(
            400,
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters.",
        )
    timestamp = parameters["X-Amz-Date"]
    signer = CredentialScope.parse(parameters["X-Amz-Credential"], timestamp).signer(
        secret_keys, S3SigV4QueryAuth
    )
    _check_not_expired(timestamp, parameters["X-Amz-Expires"], now)
    signed_headers = parameters["X-Amz-SignedHeaders"].split(";")
    request = AWSRequest(
        method=method,
        # S3's canonical URI: the decoded path, percent-encoded but for '/' and '~'.
        url=f"http://{headers.get('host', '')}{quote(unquote(raw_path), safe='/~')}",
        params=[(name, value) for name, value in query if name != "X-Amz-Signature"],
        headers={name: headers[name] for name in signed_headers if name in headers},
    )
    request.context["timestamp"] = timestamp
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    _verify(signer, string_to_sign, request, parameters["X-Amz-Signature"])


def _check_not_expired(timestamp: str, expires: str, now: datetime) -> None:
    try:
        signed_at = datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        lifetime = timedelta(seconds=int(expires))
    except ValueError:
        raise Refusal(
            400, "AuthorizationQueryParametersError", "Invalid X-Amz-Date or X-Amz-Expires."
        ) from None
    if now > signed_at + lifetime:
        raise Refusal(
            403,
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": expires, "Expires": (signed_at + lifetime).isoformat()},
            ServerTime=now.isoformat(),
        )


# moto hooks ---------------------------------------------------------------------------------

_installed: list[Callable[[], None]] = []


def install(sdk_environment: Mapping[str, str]) -> None:
    """Check every POST upload and presigned URL that moto serves in this process, against the
    key pair in `sdk_environment` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), until
    `uninstall`. A second install (a second stack) stacks on the first."""
    missing = [name for name in PATCHED_METHODS if not callable(getattr(S3Response, name, None))]
    if moto.__version__ != MOTO_VERSION or missing:
        raise RuntimeError(
            f"the S3 request checks are written for moto {MOTO_VERSION}, found "
            f"{moto.__version__} (missing: {missing or 'nothing'}): run `make setup`"
        )
    secret_keys = {sdk_environment["AWS_ACCESS_KEY_ID"]: sdk_environment["AWS_SECRET_ACCESS_KEY"]}
    original_post = S3Response._bucket_response_post
    original_key = S3Response._key_response

    def bucket_response_post(self: S3Response, request: Any, bucket_name: str) -> Any:
        if "delete" in request.args:  # DeleteObjects, an SDK call: not a form upload
            return original_post(self, request, bucket_name)
        try:
            check_post_upload(
                _form_fields(request),
                _file_size(self.body),
                bucket_name,
                secret_keys,
                datetime.now(UTC),
            )
        except Refusal as refusal:
            return refusal.response()
        return original_post(self, request, bucket_name)

    def key_response(self: S3Response, request: Any, full_url: str) -> Any:
        try:
            check_presigned_url(
                request.method,
                request.raw_path,
                _query(request),
                request.headers,
                secret_keys,
                datetime.now(UTC),
            )
        except Refusal as refusal:
            return refusal.response()
        return original_key(self, request, full_url)

    S3Response._bucket_response_post = bucket_response_post  # type: ignore[method-assign]
    S3Response._key_response = key_response  # type: ignore[method-assign]

    def restore() -> None:
        S3Response._bucket_response_post = original_post  # type: ignore[method-assign]
        S3Response._key_response = original_key  # type: ignore[method-assign]

    _installed.append(restore)


def uninstall() -> None:
    """Undo the latest `install`; nothing if none is in place."""
    if _installed:
        _installed.pop()()


def _form_fields(request: Any) -> dict[str, str]:
    """The form's fields but the file; S3 requires exactly one file."""
    if "file" not in request.files and "file" not in request.form:
        raise Refusal(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    return {name: value for name, value in request.form.items() if name.lower() != "file"}


def _file_size(body: bytes | str) -> int:
    """moto has read the file (or a text field named `file`) into the body."""
    return len(body.encode() if isinstance(body, str) else body)


def _query(request: Any) -> list[tuple[str, str]]:
    """The decoded query parameters; '+' stays a plus, as S3 reads it."""
    pairs = (pair.partition("=") for pair in request.query_string.decode().split("&") if pair)
    return [(unquote(name), unquote(value)) for name, _, value in pairs]
