"""Suite-wide settings and fixtures.

One torch thread per test process: `pytest -n 2` on a 2-core machine runs two processes;
each using two threads would oversubscribe the cores (measured here: up to 15x slower).
Subprocesses the tests launch inherit OMP_NUM_THREADS.

`chat_server`: a scripted OpenAI-compatible chat endpoint on 127.0.0.1, for the tests of
the LLM judges (rm.judge, the translation judge) and of exemplar generation.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


class ChatServer:
    """A real HTTP server in a thread, on an ephemeral port of 127.0.0.1, whose chat
    completions a test scripts.

    `responder(request body)` returns the answer text (sent as a chat completion), an
    (HTTP status, raw body text) pair sent as given, or `ChatServer.HANG`: no answer until
    the server closes. Every request is recorded in `requests` as its JSON body plus its
    `path`.
    """

    HANG = object()

    def __init__(self) -> None:
        self.responder: Callable[[dict], object] = lambda body: "OK"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, **body})
                answer = server.responder(body)
                if answer is ChatServer.HANG:
                    server.closing.wait(30)
                    return
                if isinstance(answer, str):  # an answer: wrapped as a chat completion
                    status = 200
                    payload = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
                    data = json.dumps(payload).encode()
                else:  # (status, raw body) as given
                    status, data = answer[0], answer[1].encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving (idempotent); handlers waiting on HANG return."""
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def user_text(body: dict) -> str:
        """The first user message of a chat request."""
        return next(m["content"] for m in body["messages"] if m["role"] == "user")


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()
