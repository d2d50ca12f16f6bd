"""An OpenAI-compatible chat endpoint on 127.0.0.1 (a real HTTP server in a thread, on an
ephemeral port) whose answers a test scripts: for the rm.judge tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class ScriptedChat:
    """`responder(request body)` -> answer text (sent as a chat completion), (HTTP status,
    raw body), or `ScriptedChat.HANG` (no answer until the server closes)."""

    HANG = object()

    def __init__(self) -> None:
        self.responder: Callable[[dict], object] = lambda body: "<score>5</score>"
        self.requests: list[dict] = []
        self.closing = threading.Event()
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                chat.requests.append(body)
                answer = chat.responder(body)
                if answer is ScriptedChat.HANG:
                    chat.closing.wait(30)
                    return
                if isinstance(answer, str):
                    status = 200
                    message = {"role": "assistant", "content": answer}
                    data = json.dumps({"choices": [{"message": message}]}).encode()
                else:
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
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat():
    server = ScriptedChat()
    yield server
    server.close()
