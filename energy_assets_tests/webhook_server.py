"""A loopback webhook that records the JSON posted to it, and the `webhook` pytest fixture that runs it.

Its URL carries a secret path, as Slack's incoming webhooks do, so tests can show that no log names it.
Statuses can be queued to answer the next posts (a 503 before the 200, a 403 for good).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Webhook:
    """The server's state: where it listens, the secret in its path, what it was sent and what it answers."""

    url: str = ""
    secret: str = field(default_factory=lambda: f"s3cret-{uuid.uuid4().hex}")
    posts: list[dict] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, event: str, timeout: float) -> dict:
        """The first post whose `event` is `event`, once it arrives; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [post for post in self.posts if post["body"].get("event") == event]
            if found:
                return found[0]
            time.sleep(0.5)
        raise AssertionError(f"no {event} post within {timeout} s; posts: {self.posts}")


def _handler(state: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                status = state.statuses.popleft() if state.statuses else 200
                state.posts.append(
                    {"path": self.path, "content_type": self.headers.get("Content-Type"), "status": status,
                     "body": json.loads(body)}
                )
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def webhook():
    """A webhook on 127.0.0.1 at a free port, its path holding a secret; stopped after the test."""
    state = Webhook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/{state.secret}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
