"""A local HTTP server playing an e-mail API: records requests, answers from a script."""

from __future__ import annotations

import email.policy
import json
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HUGE = 64 * 1024 * 1024  # far more than the socket buffers of loopback hold


class Rebinding:
    """A resolver whose name points somewhere else after its first answer (a TTL of 0)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return [self.answers[min(len(self.calls), len(self.answers)) - 1]]


@dataclass
class Answer:
    """One scripted answer; ``delay`` makes the client time out first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # sent as the body instead of ``body`` as JSON


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@dataclass
class MailApi:
    """What the server saw, and what it will answer next (then 200 with an id)."""

    port: int = 0
    host: str = "127.0.0.1"
    scheme: str = "http"
    requests: list[RecordedRequest] = field(default_factory=list)
    # Per answer: whether the client took the whole body (False: it hung up first).
    answered: queue.Queue[bool] = field(default_factory=queue.Queue)
    # The TLS server names (SNI) clients asked for.
    server_names: list[str | None] = field(default_factory=list)
    script: deque[Answer] = field(default_factory=deque)
    # Answers what the script does not (a provider's fake); None: 200 with an id.
    responder: Callable[[RecordedRequest], Answer] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/v1/send"

    def next_answer(self, request: RecordedRequest) -> Answer:
        with self.lock:
            self.requests.append(request)
            if self.script:
                return self.script.popleft()
            if self.responder is not None:
                return self.responder(request)
            return Answer(body={"id": f"api-{len(self.requests)}"})


def _parsed_body(content_type: str, raw: bytes) -> Any:
    """JSON as its value; ``multipart/form-data`` as its ``(name, value)`` fields, in order."""
    if not raw:
        return None
    if not content_type.startswith("multipart/form-data"):
        return json.loads(raw)
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    form = BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    # Form fields carry no charset: they are UTF-8, as the HTML standard sends them.
    return [(part.get_param("name", header="content-disposition"),
             part.get_payload(decode=True).decode("utf-8"))
            for part in form.iter_parts()]  # fmt: skip


def _handler_for(api: MailApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = _parsed_body(self.headers.get("Content-Type", ""), raw)
            answer = api.next_answer(RecordedRequest(self.path, dict(self.headers), body, raw))
            if answer.delay:
                time.sleep(answer.delay)
            payload = json.dumps(answer.body).encode() if answer.body is not None else b""
            if answer.raw is not None:
                payload = answer.raw
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError:  # the client closed the connection before taking it all
                self.close_connection = True
                api.answered.put(False)
                return
            api.answered.put(True)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_mail_api(
    host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[MailApi]:
    """Serve the fake API on a loopback address (a free port by default) for the block.

    With ``tls`` it speaks HTTPS and notes the server name each client asked for.
    """
    api = MailApi(host=host, scheme="https" if tls else "http")
    server = ThreadingHTTPServer((host, port), _handler_for(api))
    server.daemon_threads = True
    if tls is not None:

        def note_name(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
            api.server_names.append(name)

        tls.sni_callback = note_name  # type: ignore[assignment]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
