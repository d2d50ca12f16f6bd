"""rewardkit serve: every endpoint over loopback with a real HTTP client (uvicorn in a
thread, or the CLI in a subprocess): scores, OpenRLHF's format, limits, errors, token."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import requests

from rewardkit.rewards import WeightedReward, per_sample
from rewardkit.serve import ServeSettings, create_app, free_socket, running_server
from rewardkit.tasks.arith import exact_answer, number_format
from rewardkit.types import RewardOutput


@per_sample(name="test.tests")
def per_test(sample):
    """Passes test k when the completion contains str(k), for the tests in meta."""
    outcomes = [str(t) in sample.completion for t in sample.meta["tests"]]
    return RewardOutput(
        sum(outcomes) / len(outcomes), info={"passed": outcomes, "tests": len(outcomes)}
    )


@per_sample(name="test.steps")
def steps(sample):
    """One step per line: step k scores its line's length; the sample scores the mean."""
    lines = sample.completion.split("\n")
    ends, end = [], -1
    for line in lines:
        end += len(line) + 1
        ends.append(end)
    values = [float(len(line)) for line in lines]
    return RewardOutput(sum(values) / len(values), step_rewards=values, step_ends=ends)


class Blocking:
    """Sync reward that waits for `release` (to hold a concurrency slot)."""

    def __init__(self):
        self.release = threading.Event()

    def __call__(self, samples):
        self.release.wait(30)
        return [1.0] * len(samples)


def slow_sync(samples):
    time.sleep(3)
    return [1.0] * len(samples)


async def slow_async(samples):
    await asyncio.sleep(30)
    return [1.0] * len(samples)


def failing(samples):
    raise RuntimeError("sandbox unreachable")


def nan_reward(samples):
    return [math.nan] * len(samples)


def server(rewards, **settings):
    weighted = [WeightedReward(name, reward, weight) for name, reward, weight in rewards]
    return running_server(create_app(weighted, ServeSettings(**settings)))


ARITH = [("core.exact_answer", exact_answer, 1.0), ("core.number_format", number_format, 0.1)]


@pytest.fixture(scope="module")
def arith_url():
    rewards = ARITH + [("test.tests", per_test, 0.5), ("test.steps", steps, 0.0)]
    with server(rewards, max_body_bytes=20_000) as url:
        yield url


def sample(prompt, completion, **meta):
    return {"prompt": prompt, "completion": completion, "meta": meta}


# ---------------------------------------------------------------- /health, /score


def test_health_lists_rewards_and_limits(arith_url):
    r = httpx.get(f"{arith_url}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["rewards"] == {
        "core.exact_answer": 1.0,
        "core.number_format": 0.1,
        "test.tests": 0.5,
        "test.steps": 0.0,
    }
    assert body["max_body_bytes"] == 20_000 and body["running"] == 0


def test_score_gives_weighted_totals_per_reward_scores_and_per_test_info(arith_url):
    samples = [
        sample("2+2=", "4", answer="4", tests=[4, 5]),  # exact 1, format 1, tests 1/2
        sample("2+2=", " 45 ", answer="4", tests=[4, 5]),  # exact 0, format 1, tests 2/2
        sample("3+3=", "six", answer="6", tests=[6]),  # all 0
    ]
    r = httpx.post(f"{arith_url}/score", json={"samples": samples})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rewards"]["core.exact_answer"] == [1.0, 0.0, 0.0]
    assert body["rewards"]["core.number_format"] == [1.0, 1.0, 0.0]
    assert body["rewards"]["test.tests"] == [0.5, 1.0, 0.0]
    # total = 1 * exact + 0.1 * format + 0.5 * tests (+ 0 * steps)
    assert body["scores"] == pytest.approx([1 + 0.1 + 0.25, 0.1 + 0.5, 0.0])
    info = body["outputs"][0]["info"]
    assert info["test.tests"] == {"passed": [True, False], "tests": 2}
    assert info["core.exact_answer"] == {"predicted": "4"}
    assert body["errors"] == {} and body["weights"]["test.tests"] == 0.5


def test_score_returns_weighted_step_rewards_and_picks_rewards(arith_url):
    r = httpx.post(
        f"{arith_url}/score",
        json={"samples": [sample("p", "ab\nc", answer="1")], "rewards": "test.steps:2"},
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["step_rewards"] == [4.0, 2.0]  # weight 2 * line lengths 2 and 1
    assert out["step_ends"] == [2, 4]
    assert r.json()["scores"] == [3.0]  # 2 * mean(2, 1)
    assert list(r.json()["rewards"]) == ["test.steps"]
    r = httpx.post(
        f"{arith_url}/score",
        json={"samples": [sample("p", "12", answer="12")], "rewards": {"core.number_format": 3}},
    )
    assert r.json()["scores"] == [3.0] and r.json()["weights"] == {"core.number_format": 3.0}


def test_groups_default_to_runs_of_equal_prompts(arith_url):
    seen = []

    def record(samples):
        seen.extend(s.group for s in samples)
        return [0.0] * len(samples)

    with server([("rec", record, 1.0)]) as url:
        prompts = ["a", "a", "b", "a"]
        httpx.post(f"{url}/score", json={"samples": [sample(p, "x") for p in prompts]})
        assert seen == [0, 0, 1, 2]
        given = [{**sample("a", "x"), "group": g} for g in (7, 7, 3)]
        assert httpx.post(f"{url}/score", json={"samples": given}).status_code == 200
        assert seen[4:] == [7, 7, 3]


# ---------------------------------------------------------------- OpenRLHF /get_reward


def test_get_reward_speaks_openrlhf_remote_rm(arith_url):
    # what OpenRLHF's remote RM client sends: requests.post(url, json=..., timeout=180)
    payload = {
        "query": ["<s>1+2=3</s>", "1+2=4", "5+5=10"],
        "prompts": ["1+2=", "1+2=", "5+5="],
        "labels": ["3", "3", {"answer": "10", "tests": [1]}],
    }
    r = requests.post(
        f"{arith_url}/get_reward?rewards=core.exact_answer,core.number_format:0.1",
        json=payload,
        headers={"Content-Type": "application/json"},
        timeout=180,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # response after the prompt: "3</s>" (exact 1, format 0), "4" (0, 1), "10" (1, 1)
    assert body["rewards"] == pytest.approx([1.0, 0.1, 1.1])
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["core.number_format"] == [0.0, 1.0, 1.0]


def test_get_reward_strips_suffixes_merges_metas_and_takes_whole_query_without_prompts():
    with server(ARITH, strip_suffixes=("</s>", "<pad>")) as url:
        r = httpx.post(
            f"{url}/get_reward",
            json={
                "query": ["Q: 1+2= 3</s><pad><pad>"],
                "prompts": ["1+2="],
                "metas": [{"answer": "3"}],
            },
        )
        assert r.json()["rewards"] == pytest.approx([1.1]), r.text
        r = httpx.post(f"{url}/get_reward", json={"query": ["7"], "labels": ["7"], "extra": 1})
        assert r.json()["rewards"] == pytest.approx([1.1]), r.text


@pytest.mark.parametrize(
    "payload, status, words",
    [
        (
            {"query": ["1+2=3"], "prompts": ["9+9="], "labels": ["3"]},
            422,
            "does not contain its prompt",
        ),
        (
            {"query": ["1+2=3", "x"], "prompts": ["1+2="], "labels": ["3", "3"]},
            422,
            "prompts has 1 entries",
        ),
        ({"query": []}, 422, "query"),
        ({"query": "1+2=3"}, 422, "query"),
        ({"query": ["1+2=3"], "prompts": ["1+2="]}, 422, "'answer'"),  # no label: reward's KeyError
    ],
)
def test_get_reward_rejects_bad_requests(arith_url, payload, status, words):
    r = httpx.post(f"{arith_url}/get_reward?rewards=core.exact_answer", json=payload)
    assert r.status_code == status and words in r.json()["detail"], r.text


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "body"),
        (b'{"samples": []}', 422, "samples: List should have at least 1 item"),
        (b'{"samples": [{"prompt": "x"}]}', 422, "samples.0.completion: Field required"),
        (b'{"samples": [{"completion": 5}]}', 422, "samples.0.completion"),
        (b'{"samples": [{"completion": "5", "answer": 5}]}', 422, "samples.0.answer: Extra"),
        (b'{"samples": [{"completion": "5", "group": 1}, {"completion": "5"}]}', 422, "group"),
        (
            b'{"samples": [{"completion": "5", "completion_ids": [1, 2], "completion_mask": [1]}]}',
            422,
            "completion_mask",
        ),
        (
            b'{"samples": [{"completion": "5"}], "rewards": "core.exact_answer:heavy"}',
            422,
            "must be a number",
        ),
    ],
)
def test_malformed_requests_get_4xx_and_the_server_keeps_serving(arith_url, body, status, words):
    r = httpx.post(f"{arith_url}/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and words in r.json()["detail"], r.text
    ok = httpx.post(
        f"{arith_url}/score", json={"samples": [sample("1+1=", "2", answer="2", tests=[2])]}
    )
    assert ok.status_code == 200


def test_oversized_requests_get_413_declared_or_streamed(arith_url):
    big = {"samples": [sample("p", "9" * 30_000, answer="9", tests=[9])]}
    r = httpx.post(f"{arith_url}/score", json=big)
    assert r.status_code == 413 and "over the limit of 20000" in r.json()["detail"]

    def chunks():  # no Content-Length: chunked transfer, counted while read
        yield b'{"samples": [{"completion": "'
        for _ in range(30):
            yield b"9" * 1000
        yield b'"}]}'

    r = httpx.post(f"{arith_url}/score", content=chunks())
    assert r.status_code == 413, r.text
    assert httpx.get(f"{arith_url}/health").json()["counts"]["http_413"] >= 2
    ok = httpx.post(
        f"{arith_url}/score", json={"samples": [sample("1+1=", "2", answer="2", tests=[2])]}
    )
    assert ok.status_code == 200


def test_bad_content_length_gets_400(arith_url):
    host, port = arith_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}")
        reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 400"), reply


@pytest.mark.parametrize(
    "rewards, words",
    [
        ("no.such_reward", "'no.such_reward' is not a registered reward"),
        ("math.accuracy", "'math.accuracy' is registered but not served here"),
        (["core.exact_answer", "core.exact_answer"], "named twice"),
    ],
)
def test_unknown_or_unserved_reward_gets_422(arith_url, rewards, words):
    r = httpx.post(
        f"{arith_url}/score", json={"samples": [sample("p", "1", answer="1")], "rewards": rewards}
    )
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert "core.exact_answer, core.number_format" in r.json()["detail"] or "twice" in words


# ---------------------------------------------------------------- failures, timeouts, load


@pytest.mark.parametrize("reward", [slow_sync, slow_async], ids=["sync", "async"])
def test_a_reward_that_times_out_gets_504_and_the_server_goes_on(reward):
    with server([("slow", reward, 1.0), ("fast", number_format, 1.0)], timeout=0.3) as url:
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/score", json={"samples": [sample("p", "1")]}, timeout=20)
        assert r.status_code == 504 and "timeout of 0.3s" in r.json()["detail"]
        assert time.perf_counter() - t0 < 2.5  # the reward itself takes 3 s (or 30)
        fast = httpx.post(f"{url}/score", json={"samples": [sample("p", "1")], "rewards": "fast"})
        assert fast.status_code == 200 and fast.json()["scores"] == [1.0]
        assert httpx.get(f"{url}/health").json()["counts"]["timeouts"] == 1


def test_reward_failures_map_to_status_codes_or_zero_with_on_error():
    rewards = [("fail", failing, 1.0), ("nan", nan_reward, 1.0), ("exact", exact_answer, 1.0)]
    with server(rewards) as url:
        for name, status, words in [
            ("fail", 500, "RuntimeError: sandbox unreachable"),
            ("nan", 500, "returned nan"),
            ("exact", 422, "needs the dataset row to have an 'answer'"),
        ]:
            r = httpx.post(f"{url}/score", json={"samples": [sample("p", "1")], "rewards": name})
            assert r.status_code == status and words in r.json()["detail"], (name, r.text)
    with server([("fail", failing, 1.0), ("fmt", number_format, 2.0)], on_error="zero") as url:
        r = httpx.post(f"{url}/score", json={"samples": [sample("p", "1"), sample("p", "x")]})
        assert r.status_code == 200
        assert r.json()["scores"] == [2.0, 0.0] and r.json()["errors"] == {"fail": 2}
        assert "sandbox unreachable" in r.json()["outputs"][0]["info"]["fail"]["error"]


def test_concurrency_bound_queues_then_rejects_with_503():
    blocking = Blocking()
    with server([("block", blocking, 1.0)], max_concurrency=1, max_queue=1) as url:
        results = {}

        def post(key):
            results[key] = httpx.post(
                f"{url}/score", json={"samples": [sample("p", "1")]}, timeout=30
            )

        def wait_for(field, value):
            deadline = time.monotonic() + 10
            while httpx.get(f"{url}/health").json()[field] != value:
                assert time.monotonic() < deadline, f"{field} never reached {value}"
                time.sleep(0.02)

        first = threading.Thread(target=post, args=("first",))
        first.start()
        wait_for("running", 1)
        second = threading.Thread(target=post, args=("second",))
        second.start()
        wait_for("queued", 1)
        third = httpx.post(f"{url}/score", json={"samples": [sample("p", "1")]})
        assert third.status_code == 503 and third.headers["retry-after"] == "1"
        assert "1 batches scoring and 1 waiting" in third.json()["detail"]
        blocking.release.set()
        first.join(30)
        second.join(30)
        assert results["first"].status_code == results["second"].status_code == 200
        assert httpx.get(f"{url}/health").json()["counts"]["busy"] == 1


def test_bearer_token_guards_post_endpoints_but_not_health():
    with server(ARITH, token="s3cret") as url:
        body = {"samples": [sample("1+1=", "2", answer="2")]}
        assert httpx.get(f"{url}/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{url}/score", json=body, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = httpx.post(f"{url}/get_reward", json={"query": ["2"], "labels": ["2"]})
        assert r.status_code == 401
        r = httpx.post(f"{url}/score", content=b"{oops", headers={"Authorization": "Bearer x"})
        assert r.status_code == 401  # the token is checked before the body is read
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{url}/score", json=body, headers=good).json()["scores"] == [1.1]


# ---------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_serves_a_task_rewards_with_a_token_from_the_environment():
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "REWARDKIT_SERVE_TOKEN": "t0k"}
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "--task", "core.arith",
           "--port", str(port), "--log-level", "warning", "--max-body-mb", "0.001"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"{url}/health").json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health["rewards"] == {"core.exact_answer": 1.0, "core.number_format": 0.1}
        assert health["max_body_bytes"] == 1048
        auth = {"Authorization": "Bearer t0k"}
        payload = {"query": ["1+2=3", "1+2=x"], "prompts": ["1+2=", "1+2="], "labels": ["3", "3"]}
        r = httpx.post(f"{url}/get_reward", json=payload, headers=auth)
        assert r.json()["rewards"] == pytest.approx([1.1, 0.0])
        big = {"query": ["9" * 2000]}
        assert httpx.post(f"{url}/get_reward", json=big, headers=auth).status_code == 413
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert "core.exact_answer:1, core.number_format:0.1" in out and "bearer token required" in out


def test_cli_rejects_bad_reward_sets(capsys):
    from rewardkit.cli import main

    assert main(["serve", "--reward", "core.exact_answer:x"]) == 2
    assert "must be a number" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "--reward" in capsys.readouterr().err
    assert main(["serve", "--reward", "core.exact_answer", "--option", "oops"]) == 2
    assert "REWARD.KEY=VALUE" in capsys.readouterr().err
