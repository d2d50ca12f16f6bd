"""`rewardkit serve`: score batches over HTTP with registered rewards (FastAPI + uvicorn).

Endpoints (JSON in, JSON out; POST endpoints need `Authorization: Bearer <token>` when the
server has a token):

- `POST /score` (native): `{"samples": [{"prompt", "completion", "meta", "group",
  "completion_ids", "completion_mask", "turns", "truncated"}], "rewards": "a,b:0.5"}` ->
  `{"scores", "rewards", "weights", "outputs": [{"score", "info", "step_rewards",
  "step_ends", "token_rewards"}], "errors", "elapsed_s"}`. `info` is keyed by reward, e.g.
  `info["code.pass_rate"]["outcomes"]` holds per-test outcomes; step rewards are summed with
  the weights. `rewards` (optional) picks some of the served rewards, with weights.
- `POST /get_reward` (OpenRLHF's remote reward model, `--remote_rm_url
  http://host:port/get_reward`): `{"query": [prompt+response texts], "prompts": [...],
  "labels": [...], "metas": [...]}` -> `{"rewards": [...], "scores": [...], "extra_logs":
  {reward: [...]}}`. The response is what follows the prompt inside the query (the whole
  query when no prompts are sent); a string label becomes `meta[label_key]`, a dict label
  is merged into `meta`, as are `metas` (sent by some OpenRLHF versions). A query string
  parameter `?rewards=a,b:0.5` picks rewards as in /score.
- `GET /health`: status, served rewards, load and counters (no token needed).

Limits: at most `max_concurrency` batches score at once and `max_queue` wait (more get
503); a request that has not finished `timeout` seconds after it arrived gets 504; a body
over `max_body_bytes` gets 413. Malformed JSON gets 400, a body of the wrong shape or an
unknown reward 422, a reward that rejects its input (KeyError/ValueError/TypeError) 422,
any other reward failure 500, all with `{"detail": "..."}`; the server keeps serving.
A timed-out async reward is cancelled; a sync reward runs in a thread, which finishes
its call in the background (Python cannot stop a thread) - rewards that run programs
(sandbox, math-verify) enforce their own time limits.
"""

from rewardkit.serve.app import (
    RewardService,
    ServeSettings,
    create_app,
    free_socket,
    running_server,
    serve,
)
from rewardkit.serve.formats import OpenRLHFRequest, ScoreRequest, ServeError

__all__ = [
    "OpenRLHFRequest",
    "RewardService",
    "ScoreRequest",
    "ServeError",
    "ServeSettings",
    "create_app",
    "free_socket",
    "running_server",
    "serve",
]
