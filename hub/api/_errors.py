"""Every failure leaves the hub as an OperationOutcome with the right HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.fhir import FhirError, Issue, json_bytes, operation_outcome

from ._http import FHIR_CONTENT_TYPE, fhir_response

logger = logging.getLogger("hub.api")

INTERNAL_ERROR = "Internal server error: the request could not be completed"


class BodyTooLarge(FhirError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes", code="too-long")


def _error_bytes(error: FhirError) -> bytes:
    return json_bytes(error.outcome())


async def _send_outcome(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", FHIR_CONTENT_TYPE.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
    ]
    if close:  # the request body was not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for request bodies over `max_body_bytes`.

    A declared Content-Length over the limit is refused before anything is read; a body sent
    without one (chunked) is counted as it arrives, and reading past the limit raises
    `BodyTooLarge`, which the FhirError handler turns into the 413.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    continue
                if declared > limit:
                    await _send_outcome(send, 413, _error_bytes(BodyTooLarge(limit)), close=True)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


class InternalErrorMiddleware:
    """500 with a generic OperationOutcome for any unexpected exception.

    The traceback goes to the log; nothing of the request goes into the response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("Unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _send_outcome(
                send, 500, _error_bytes(FhirError(500, INTERNAL_ERROR, code="exception"))
            )


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    if exc.status >= 500:
        logger.warning(
            "%s %s failed with %s: %s", request.method, request.url.path, exc.status, exc
        )
    return fhir_response(request, exc.outcome(), exc.status)


_HTTP_CODES = {404: "not-found", 405: "not-supported"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        diagnostics = "Nothing is served at this URL"
    elif exc.status_code == 405:
        diagnostics = f"{request.method} is not supported at this URL"
    else:
        diagnostics = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, "processing")
    outcome = operation_outcome([Issue("error", code, diagnostics)])
    headers: dict[str, Any] = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return fhir_response(request, outcome, exc.status_code, headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = [
        Issue("error", "invalid", f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        for e in exc.errors()
    ]
    return fhir_response(request, operation_outcome(issues), 400)


def install_error_handling(app: FastAPI, *, max_body_bytes: int) -> None:
    """OperationOutcome responses for FHIR errors, unknown routes, wrong methods, too-large
    bodies and unexpected exceptions."""
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(InternalErrorMiddleware)
