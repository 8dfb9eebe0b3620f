"""A Spin Python SDK 5 HTTP component (componentize-py, world
spin:up/http-trigger@4.1.0: a WASI 0.3 component exporting
wasi:http/handler@0.3.0). The routes of apps/components/component-hello that
the Python SDK can serve, answered the same way so the tests are shared:

- /hello: 200 "Hello from Python\n"
- /request: the request as JSON (method, uri, path, query, body length and
  every header, Spin's spin-* ones included)
- /kv/<key>: GET / PUT / DELETE on the `default` store, 404 when missing
- /kv-denied: opens the ungranted store `secret`: 403 "access-denied"
- /counter: increments `counter` in the `default` store, answers the new value
- /var/<name>: a component variable, 500 "undefined: <text>" when undefined
- /echo: the request body back

Errors are written as the WIT case name, ": payload" when it has one. The
SDK's `Handler` reads the whole request body before `handle_request` and
writes the response body from a task it spawns after returning the response.
"""

import json
import re
from urllib.parse import urlsplit

from componentize_py_types import Err
from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode("utf-8"))


def case_name(error: object) -> str:
    """`Error_AccessDenied()` -> "access-denied", `Error_Other("x")` -> "other: x"."""
    name = type(error).__name__.removeprefix("Error_")
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    value = getattr(error, "value", None)
    return kebab if value is None else f"{kebab}: {value}"


def request_json(request: Request) -> Response:
    parts = urlsplit(request.uri)
    shape = {
        "method": request.method,
        "uri": request.uri,
        "path": parts.path,
        "query": parts.query,
        "body_len": len(request.body or b""),
        "headers": request.headers,
    }
    return Response(
        200,
        {"content-type": "application/json"},
        (json.dumps(shape, separators=(",", ":")) + "\n").encode("utf-8"),
    )


async def kv(request: Request, key: str) -> Response:
    with await key_value.open_default() as store:
        if request.method == "GET":
            value = await store.get(key)
            if value is None:
                return text(404, f"no key {key}\n")
            return Response(200, {"content-type": "application/octet-stream"}, value)
        if request.method in ("PUT", "POST"):
            body = request.body or b""
            await store.set(key, body)
            return text(200, f"stored {key} ({len(body)} bytes)\n")
        if request.method == "DELETE":
            if not await store.exists(key):
                return text(404, f"no key {key}\n")
            await store.delete(key)
            return text(200, f"deleted {key}\n")
        return text(405, "GET, PUT or DELETE\n")


async def counter() -> Response:
    with await key_value.open_default() as store:
        current = await store.get("counter")
        try:
            value = int(current or b"0")
        except ValueError:
            value = 0
        value += 1
        await store.set("counter", str(value).encode("utf-8"))
        return text(200, f"{value}\n")


async def route(request: Request) -> Response:
    path = urlsplit(request.uri).path
    if path == "/hello":
        return text(200, "Hello from Python\n")
    if path == "/request":
        return request_json(request)
    if path == "/echo":
        content_type = request.headers.get("content-type", "application/octet-stream")
        return Response(200, {"content-type": content_type}, request.body or b"")
    if path == "/kv-denied":
        try:
            with await key_value.open("secret"):
                return text(200, "opened store secret (should have been denied)\n")
        except Err as e:
            return text(403, case_name(e.value) + "\n")
    if path == "/counter":
        return await counter()
    if path.startswith("/kv/"):
        try:
            return await kv(request, path.removeprefix("/kv/"))
        except Err as e:
            return text(500, case_name(e.value) + "\n")
    if path.startswith("/var/"):
        try:
            return text(200, await variables.get(path.removeprefix("/var/")))
        except Err as e:
            return text(500, case_name(e.value) + "\n")
    return text(404, f"no route for {path}\n")


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        return await route(request)
