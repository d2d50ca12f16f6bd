"""The reward server: scoring service, token and size guard, FastAPI app, uvicorn."""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rewardkit.external import jsonable, output_to_json, parse_reward_set
from rewardkit.registry import REWARDS
from rewardkit.rewards.scoring import RewardError, Scorer, ScoreResult, WeightedReward
from rewardkit.serve.formats import (
    OpenRLHFRequest,
    ScoreRequest,
    ServeError,
    samples_from_openrlhf,
    samples_from_request,
)
from rewardkit.types import Sample


@dataclass
class ServeSettings:
    max_concurrency: int = 4  # batches scored at once
    max_queue: int = 64  # batches waiting for a slot; more get 503
    timeout: float = 120.0  # seconds from arrival to reply; later gets 504
    max_body_bytes: int = 16 * 2**20
    token: str | None = None  # bearer token for the POST endpoints
    on_error: Literal["raise", "zero"] = "raise"  # "zero": a failing reward scores 0, counted
    label_key: str = "answer"  # /get_reward: meta key of a string label
    strip_suffixes: tuple[str, ...] = ()  # /get_reward: removed from the end of responses

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0")
        if not self.timeout > 0 or self.max_body_bytes < 1:
            raise ValueError("timeout and max_body_bytes must be positive")


# ---------------------------------------------------------------- scoring service


class RewardService:
    """The served rewards, one Scorer per requested weighting, the slots and counters."""

    max_scorers = 32

    def __init__(self, rewards: list[WeightedReward], settings: ServeSettings):
        if not rewards:
            raise ValueError("the server needs at least one reward")
        self.rewards = {r.name: r for r in rewards}
        self.default = tuple((r.name, r.weight) for r in rewards)
        self.settings = settings
        self.scorers: dict[tuple[tuple[str, float], ...], Scorer] = {}
        self.slots = asyncio.Semaphore(settings.max_concurrency)
        self.queued = self.running = 0
        self.counts: Counter[str] = Counter()
        self.started = time.time()

    def selection(self, rewards: Any) -> tuple[tuple[str, float], ...]:
        if rewards is None:
            return self.default
        try:
            specs = parse_reward_set(rewards)
        except ValueError as exc:
            raise ServeError(422, f"rewards: {exc}") from None
        for spec in specs:
            if spec.name not in self.rewards:
                why = (
                    "is registered but not served here"
                    if spec.name in REWARDS.names()
                    else "is not a registered reward"
                )
                raise ServeError(
                    422,
                    f"reward {spec.name!r} {why}; this server scores with "
                    f"{', '.join(self.rewards)}",
                )
        return tuple((s.name, s.weight) for s in specs)

    def scorer(self, key: tuple[tuple[str, float], ...]) -> Scorer:
        if key not in self.scorers:
            if len(self.scorers) >= self.max_scorers:
                # forget the oldest weighting; not closed, as a request may still use it
                # (its idle threads end when it is collected)
                self.scorers.pop(next(iter(self.scorers)))
            weighted = [
                WeightedReward(n, self.rewards[n].reward, w, self.rewards[n].timeout)
                for n, w in key
            ]
            workers = self.settings.max_concurrency * len(weighted) + 2
            self.scorers[key] = Scorer(
                weighted, timeout=None, on_error=self.settings.on_error, max_workers=workers
            )
        return self.scorers[key]

    async def score(self, samples: list[Sample], key) -> ScoreResult:
        """Wait for a slot and score, within the request timeout."""
        scorer = self.scorer(key)
        if self.queued >= self.settings.max_queue and self.slots.locked():
            self.counts["busy"] += 1
            raise ServeError(
                503,
                f"server busy: {self.running} batches scoring and "
                f"{self.queued} waiting (max_queue={self.settings.max_queue})",
            )
        self.queued += 1
        acquired = False
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self.slots.acquire()
                acquired = True
                self.queued -= 1
                self.running += 1
                return await scorer.score(samples)
        except TimeoutError:
            self.counts["timeouts"] += 1
            raise ServeError(
                504,
                f"scoring did not finish within the request timeout of {self.settings.timeout}s",
            ) from None
        except RewardError as exc:
            cause = exc.__cause__
            status = 422 if isinstance(cause, KeyError | ValueError | TypeError) else 500
            self.counts["reward_errors"] += 1
            raise ServeError(status, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any reward failure becomes a 500 reply
            self.counts["reward_errors"] += 1
            raise ServeError(500, f"scoring failed: {type(exc).__name__}: {exc}") from None
        finally:
            if acquired:
                self.running -= 1
                self.slots.release()
            else:
                self.queued -= 1

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "rewards": dict(self.default),
            "running": self.running,
            "queued": self.queued,
            "max_concurrency": self.settings.max_concurrency,
            "max_queue": self.settings.max_queue,
            "timeout_s": self.settings.timeout,
            "max_body_bytes": self.settings.max_body_bytes,
            "counts": dict(self.counts),
            "uptime_s": round(time.time() - self.started, 3),
        }

    def close(self) -> None:
        for scorer in self.scorers.values():
            scorer.close()


# ---------------------------------------------------------------- the app


class Guard:
    """ASGI middleware, before any parsing: the bearer token (all but /health), then the
    body, read whole (at most `max_bytes`) and handed on to the app."""

    def __init__(self, app, service: RewardService):
        self.app, self.service = app, service
        self.settings = service.settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        headers, token = dict(scope["headers"]), self.settings.token
        if token is not None:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                detail = "missing or wrong bearer token (send Authorization: Bearer <token>)"
                return await self._reply(scope, send, 401, detail)
        declared = headers.get(b"content-length", b"0").decode("latin-1")
        if not declared.isdigit():
            return await self._reply(scope, send, 400, f"bad Content-Length {declared!r}")
        if int(declared) > self.settings.max_body_bytes:
            return await self._reply(scope, send, 413, self._too_big(declared))
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.settings.max_body_bytes:
                return await self._reply(scope, send, 413, self._too_big(f"over {size}"))
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self, size: str) -> str:
        return f"request body of {size} bytes is over the limit of {self.settings.max_body_bytes}"

    async def _reply(self, scope, send, status: int, detail: str) -> None:
        self.service.counts[f"http_{status}"] += 1
        headers = {"Connection": "close"}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        await JSONResponse({"detail": detail}, status, headers=headers)(scope, None, send)


def create_app(rewards: list[WeightedReward], settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving `rewards` (their weighted sum unless a request picks some)."""
    settings = settings or ServeSettings()
    service = RewardService(rewards, settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="rewardkit reward server", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(Guard, service=service)

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError):
        service.counts[f"http_{exc.status}"] += 1
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse({"detail": exc.detail}, exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            service.counts["http_400"] += 1
            return JSONResponse({"detail": "request body is not valid JSON"}, 400)
        service.counts["http_422"] += 1
        lines = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors[:20]
        ]
        return JSONResponse({"detail": "; ".join(lines)}, 422)

    @app.get("/health")
    async def health():
        return JSONResponse(service.health())

    @app.post("/score")
    async def score(body: ScoreRequest):
        t0 = time.perf_counter()
        key = service.selection(body.rewards)
        result = await service.score(samples_from_request(body), key)
        service.counts["scored_samples"] += len(result.outputs)
        return JSONResponse(
            {
                "scores": [o.score for o in result.outputs],
                "rewards": jsonable(result.raw),
                "weights": dict(key),
                "outputs": [output_to_json(o) for o in result.outputs],
                "errors": result.errors,
                "elapsed_s": round(time.perf_counter() - t0, 6),
            }
        )

    @app.post("/get_reward")
    async def get_reward(body: OpenRLHFRequest, rewards: str | None = None):
        key = service.selection(rewards)
        result = await service.score(
            samples_from_openrlhf(body, settings.label_key, settings.strip_suffixes), key
        )
        service.counts["scored_samples"] += len(result.outputs)
        totals = [o.score for o in result.outputs]
        return JSONResponse(
            {"rewards": totals, "scores": totals, "extra_logs": jsonable(result.raw)}
        )

    return app


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def running_server(app, host: str = "127.0.0.1", log_level: str = "warning") -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port; yields the base URL."""
    sock = free_socket(host)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the reward server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def serve(
    rewards: list[WeightedReward],
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Run the server in the foreground until interrupted."""
    uvicorn.run(create_app(rewards, settings), host=host, port=port, log_level=log_level)
