"""A loopback HTTP proxy in front of an S3-compatible server that fails chosen requests.

Each :class:`Fault` matches requests by method and path and is applied to the
first ``times`` of them:

- ``status``: answer with an S3 error (``500 InternalError``, ``503 SlowDown``)
  without forwarding;
- ``delay``: wait ``seconds`` before forwarding, so that a client with a
  shorter read timeout gives up (the server may still apply the request);
- ``drop``: close the connection without forwarding or answering;
- ``lost_response``: forward (the server applies the request), then close the
  connection without answering: the client cannot tell that it succeeded.

Everything stays on 127.0.0.1.
"""

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
}


@dataclass
class Fault:
    kind: str  # status | delay | drop | lost_response
    times: int = 1
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    status: int = 503
    code: str = "SlowDown"
    seconds: float = 0.0
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.applied < self.times
            and (self.method is None or self.method == method)
            and (self.path is None or re.search(self.path, path) is not None)
        )


@dataclass
class FaultyProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        target = urlsplit(self.upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy.lock:
                    proxy.requests += 1
                    fault = next(
                        (f for f in proxy.faults if f.matches(self.command, self.path)), None
                    )
                    if fault is not None:
                        fault.applied += 1
                if fault is not None and fault.kind == "status":
                    self._error(fault)
                    return
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)
                status, headers, payload = self._forward(body)
                if fault is not None and fault.kind == "lost_response":
                    self.close_connection = True
                    return
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    # A HEAD's answer has no body but the length of the one a GET would get.
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                    self.send_header(
                        "Content-Length", length if self.command == "HEAD" else str(len(payload))
                    )
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    self.close_connection = True

            def _forward(self, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = b"" if self.command == "HEAD" else response.read()
                    return response.status, response.getheaders(), payload
                finally:
                    connection.close()

            def _error(self, fault: Fault) -> None:
                message = MESSAGES.get(fault.code, fault.code)
                payload = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                    f"<Message>{message}</Message><RequestId>injected</RequestId></Error>"
                ).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header(
                    "Content-Length", str(0 if self.command == "HEAD" else len(payload))
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    @property
    def injected(self) -> int:
        return sum(f.applied for f in self.faults)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
