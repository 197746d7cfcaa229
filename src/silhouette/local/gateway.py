"""The embedded stack's API Gateway: what `sam local start-api` does, without Docker.

moto stores REST APIs, API keys and usage plans but does not route HTTP requests to Lambda
functions. This gateway does, for the routes declared as `Api` events in template.yaml: it
checks the `x-api-key` header against the keys of the API's usage plan (kept in moto, so the
function resolves tenants through the same `apigateway:GetApiKey` call as in AWS), throttles
each key with the plan's rate and burst, builds the REST API proxy event, invokes the function
through the Lambda API and answers with its response. Refusals use the template's gateway
responses. It binds 127.0.0.1 only.

It also serves the web page (`web/` beside the template) at `/`: GETs that match no route are
its files, so the page calls the API from its own origin, with no CORS. On AWS, CloudFront
gives the page and the API one origin the same way (README, "The web page")."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from werkzeug.exceptions import NotFound
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from silhouette.local.template import Template
from silhouette.schema import Role

_API = "AWS::Serverless::Api"
_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit
# API Gateway caches the keys it has checked too: a key disabled or added takes effect within
# this time. Looking each one up through the emulator cost ~38 ms of CPU on every request.
KEY_CACHE_SECONDS = 5.0
# API Gateway waits this long for the integration, then answers 504; it never retries.
INTEGRATION_TIMEOUT_SECONDS = 29
_INTEGRATION = Config(read_timeout=INTEGRATION_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})
PAGE_FOLDER = "web"  # beside template.yaml
PAGE_INDEX = "index.html"


@dataclass(frozen=True)
class Route:
    path: str  # with {parameters}, as in the template
    method: str
    function_name: str
    api_key_required: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}$")


@dataclass
class TokenBucket:
    """API Gateway's throttle: `burst` requests at once, refilled at `rate` per second."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens, self.updated = self.burst, self.clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class KeyHolder:
    """Whom a local API key belongs to, as the key's `tenant` and `role` tags say in AWS."""

    tenant: str
    role: Role = Role.USER

    @classmethod
    def of(cls, holder: str | KeyHolder) -> KeyHolder:
        return holder if isinstance(holder, KeyHolder) else cls(holder)


class LocalApiGateway:
    def __init__(self, template: Template, clients: Any, port: int) -> None:
        """`clients(service, config=None)` returns a boto3 client for the embedded stack."""
        (self.api_id,) = template.resources(_API)
        self.template = template
        self._clients = clients
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.page_url = f"{self.url}/"
        self._page_root = template.root / PAGE_FOLDER
        api = template.resolve(template.properties(self.api_id))
        self.stage = api.get("StageName", "v1")
        auth = api.get("Auth", {})
        throttle = auth.get("UsagePlan", {}).get("Throttle", {})
        self._rate = float(throttle.get("RateLimit", 10_000))
        self._burst = float(throttle.get("BurstLimit", 5_000))
        self._responses = api.get("GatewayResponses", {})
        self.routes = self._routes(template, self.api_id, bool(auth.get("ApiKeyRequired")))
        # Stage-wide limits per route, for all callers together: {(path, method): (rate, burst)}
        self._route_limits = {
            # "/~1health" is the resource "/health" (a leading "/", then "/" written "~1").
            (setting["ResourcePath"][1:].replace("~1", "/"), setting["HttpMethod"]): (
                float(setting["ThrottlingRateLimit"]),
                float(setting["ThrottlingBurstLimit"]),
            )
            for setting in api.get("MethodSettings", [])
            if "ThrottlingRateLimit" in setting
        }
        self._buckets: dict[str, TokenBucket] = {}
        # Key value -> (when looked up, key id or None): see KEY_CACHE_SECONDS.
        self._known_keys: dict[str, tuple[float, str | None]] = {}
        self.clock: Callable[[], float] = time.monotonic  # the throttle's; tests may stop it
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None

    @staticmethod
    def _routes(template: Template, api_id: str, key_required: bool) -> list[Route]:
        routes = []
        for logical_id in template.resources("AWS::Serverless::Function"):
            for event in template.properties(logical_id).get("Events", {}).values():
                properties = event.get("Properties", {})
                if event["Type"] != "Api" or properties.get("RestApiId") != {"Ref": api_id}:
                    continue
                required = properties.get("Auth", {}).get("ApiKeyRequired", key_required)
                routes.append(
                    Route(
                        path=properties["Path"],
                        method=properties["Method"].upper(),
                        function_name=template.physical_name(logical_id),
                        api_key_required=bool(required),
                    )
                )
        return routes

    # Keys and usage plan ------------------------------------------------------------------

    def provision(self, api_keys: Mapping[str, KeyHolder]) -> None:
        """Create the REST API, its usage plan and one key per entry in moto, tagged with its
        tenant and role as keys are in AWS."""
        with self._lock:
            self._known_keys.clear()
        apigateway = self._clients("apigateway")
        rest_api = apigateway.create_rest_api(name=self.template.physical_name(self.api_id))
        plan = apigateway.create_usage_plan(
            name=f"{self.template.physical_name(self.api_id)}-usage-plan",
            apiStages=[{"apiId": rest_api["id"], "stage": self.stage}],
            throttle={"rateLimit": self._rate, "burstLimit": int(self._burst)},
        )
        for value, holder in api_keys.items():
            key = apigateway.create_api_key(
                name=f"{holder.tenant}-{holder.role.value}",
                value=value,
                enabled=True,
                tags={"tenant": holder.tenant, "role": holder.role.value},
            )
            apigateway.create_usage_plan_key(
                usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY"
            )

    def _key_id(self, value: str) -> str | None:
        """The id of an enabled key with this value in a usage plan of this API, else None;
        looked up again once KEY_CACHE_SECONDS have passed."""
        now = self.clock()
        with self._lock:
            known = self._known_keys.get(value)
        if known is not None and now - known[0] < KEY_CACHE_SECONDS:
            return known[1]
        key_id = self._look_up_key(value)
        with self._lock:
            self._known_keys[value] = (now, key_id)
        return key_id

    def _look_up_key(self, value: str) -> str | None:
        apigateway = self._apigateway
        keys = apigateway.get_api_keys(includeValues=True)["items"]
        matching = [key for key in keys if key.get("value") == value and key.get("enabled")]
        if not matching:
            return None
        planned = {
            plan_key["id"]
            for plan in apigateway.get_usage_plans()["items"]
            for plan_key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        }
        return next((key["id"] for key in matching if key["id"] in planned), None)

    def _throttled(self, key_id: str | None, route: Route) -> bool:
        """Over the route's stage-wide limit, or over the key's usage plan."""
        limits = {}
        if (route.path, route.method) in self._route_limits:
            limits[f"{route.method} {route.path}"] = self._route_limits[(route.path, route.method)]
        if key_id is not None:
            limits[f"key {key_id}"] = (self._rate, self._burst)
        with self._lock:
            return not all(self._bucket(name, *limit).take() for name, limit in limits.items())

    def _bucket(self, name: str, rate: float, burst: float) -> TokenBucket:
        return self._buckets.setdefault(name, TokenBucket(rate, burst, lambda: self.clock()))

    def forget_throttles(self) -> None:
        """Start every key's allowance afresh (a full burst)."""
        with self._lock:
            self._buckets.clear()

    # HTTP ---------------------------------------------------------------------------------

    def start(self) -> LocalApiGateway:
        # One client each for every request (boto3 clients are thread-safe; making one is not
        # cheap): the key lookups, and the integration with API Gateway's timeout.
        self._apigateway = self._clients("apigateway")
        self._lambda = self._clients("lambda", _INTEGRATION)
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    def _refusal(self, kind: str, status: int, default: str) -> Response:
        configured = self._responses.get(kind, {})
        body = configured.get("ResponseTemplates", {}).get(
            "application/json", json.dumps({"message": default})
        )
        response = Response(
            body, status=int(configured.get("StatusCode", status)), mimetype="application/json"
        )
        for name, value in configured.get("ResponseParameters", {}).get("Headers", {}).items():
            response.headers[name] = value.strip("'")  # a static value is quoted in the template
        return response

    def handle(self, request: Request) -> Response:
        route, parameters = self._match(request.path, request.method)
        if route is None and request.method in ("GET", "HEAD"):
            page_file = self._page_file(request)
            if page_file is not None:
                return page_file
        if route is None:
            return self._refusal(
                "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token"
            )
        key_value = request.headers.get("x-api-key")
        key_id = self._key_id(key_value) if key_value else None
        if route.api_key_required and key_id is None:
            return self._refusal("INVALID_API_KEY", 403, "Forbidden")
        if self._throttled(key_id, route):
            return self._refusal("THROTTLED", 429, "Too Many Requests")
        body = request.get_data()
        if len(body) > _MAX_PAYLOAD_BYTES:
            return Response(
                json.dumps({"message": "Request Too Long"}), 413, mimetype="application/json"
            )
        event = self._proxy_event(request, route, parameters, body, key_value, key_id)
        return self._invoke(route, event)

    def _page_file(self, request: Request) -> Response | None:
        """The page's file at this path (`/` is its index), or None when it has none."""
        path = request.path.lstrip("/") or PAGE_INDEX
        try:
            response = send_from_directory(self._page_root, path, request.environ)
        except NotFound:
            return None
        # Revalidated on every load: an edited page is seen at once, as after a deployment.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _match(self, path: str, method: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                return route, match.groupdict()
        return None, {}

    def _proxy_event(
        self,
        request: Request,
        route: Route,
        parameters: dict[str, str],
        body: bytes,
        key_value: str | None,
        key_id: str | None,
    ) -> dict[str, Any]:
        try:
            text, is_base64 = (body.decode() if body else None), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        query, headers = request.args, request.headers
        return {
            "resource": route.path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": dict(headers.items()),
            "multiValueHeaders": {name: headers.getlist(name) for name, _ in headers.items()},
            "queryStringParameters": query.to_dict() or None,
            "multiValueQueryStringParameters": query.to_dict(flat=False) or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": request.method,
                "path": f"/{self.stage}{request.path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "apiId": self.api_id.lower(),
                "protocol": "HTTP/1.1",
                "domainName": request.host,
                "identity": {
                    "sourceIp": request.remote_addr,
                    "userAgent": request.user_agent.string,
                    "apiKey": key_value if key_id else None,
                    "apiKeyId": key_id,
                },
            },
            "body": text,
            "isBase64Encoded": is_base64,
        }

    def _invoke(self, route: Route, event: dict[str, Any]) -> Response:
        try:
            invoked = self._lambda.invoke(
                FunctionName=route.function_name, Payload=json.dumps(event).encode()
            )
        except ReadTimeoutError:
            return self._refusal("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")
        except ClientError:  # e.g. the function throttled: every instance busy
            return self._refusal("INTEGRATION_FAILURE", 500, "Internal server error")
        payload = json.loads(invoked["Payload"].read() or b"null")
        if invoked.get("FunctionError") or not isinstance(payload, dict):
            # What API Gateway answers when the integration fails.
            return Response(
                json.dumps({"message": "Internal server error"}), 502, mimetype="application/json"
            )
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(payload.get("statusCode", 200)))
        response.headers.clear()
        for name, value in (payload.get("headers") or {}).items():
            response.headers[name] = value
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            response.headers.setlist(name, values)
        return response
