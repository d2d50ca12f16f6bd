"""A scripted OpenAI-compatible chat server on 127.0.0.1 (a real HTTP server in a thread,
on an ephemeral port), for the LLM-judge and exemplar-generation tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# responder(request body) -> answer text (sent as a chat completion), or (HTTP status,
# raw body text)
Responder = Callable[[dict], "str | tuple[int, str]"]


class FakeChatServer:
    def __init__(self) -> None:
        self.responder: Responder = lambda body: "[[TIE]]"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, **body})
                answer = server.responder(body)
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
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def user_text(body: dict) -> str:
        """The first user message of a chat request."""
        return next(m["content"] for m in body["messages"] if m["role"] == "user")

    @staticmethod
    def shown_pair(body: dict) -> tuple[str, str]:
        """(translation A, translation B) as the judge prompt shows them."""
        text = FakeChatServer.user_text(body)
        a = text.split("[Translation A]\n", 1)[1].split("\n\n[Translation B]", 1)[0]
        b = text.split("[Translation B]\n", 1)[1].split("\n\nYou may reason", 1)[0]
        return a, b


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    yield server
    server.close()
