"""Training on tiny models: every loss end to end, config errors, checkpoints and resume."""

import json
from pathlib import Path

import pytest
import torch

from rewardkit_rm.cli import main
from rewardkit_rm.config import RMConfig
from rewardkit_rm.data import Pair, write_jsonl
from rewardkit_rm.model import load_reward_model
from rewardkit_rm.scoring import head_outputs
from rewardkit_rm.train import train

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}


def learnable_pairs(n=60):
    """The chosen answer says 'yes', the rejected 'no'; four rejected per problem."""
    pairs = []
    for i in range(n):
        for j, bad in enumerate(["no", "nah", "nope", "never"]):
            pairs.append(
                Pair(f"q{i}?", f"yes {i % 7}", f"{bad} {j}", problem_id=f"p{i}", source="s")
            )
    return pairs


def config(tmp_path, **kw):
    base = dict(
        model="tiny",
        tiny_model=TINY,
        max_length=32,
        batch_size=8,
        max_steps=40,
        learning_rate=3e-3,
        lr_scheduler="constant",
        output_dir=str(tmp_path / "run"),
        progress=False,
        eval_pairs=64,
        data=[{"path": str(tmp_path / "pairs.jsonl")}],
    )
    return RMConfig(**{**base, **kw})


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown config key 'los'. Did you mean loss"):
        RMConfig(los="bt")
    with pytest.raises(ValueError, match="batch_size"):
        RMConfig(batch_size=0)
    with pytest.raises(ValueError, match="loss 'gpm'"):
        RMConfig(loss="gpm", loss_options={"dims": 3})
    with pytest.raises(ValueError, match="pooling: mean needs kind: causal_head"):
        RMConfig(kind="seqcls", pooling="mean")
    with pytest.raises(ValueError, match="pooling"):
        RMConfig(pooling="max")
    with pytest.raises(ValueError, match="exactly one of `path` or `source`"):
        RMConfig(data=[{"path": "a", "source": "b"}])


def test_bt_learns_held_out_pairs_and_final_is_loadable(tmp_path):
    write_jsonl(learnable_pairs(), tmp_path / "pairs.jsonl")
    final = train(config(tmp_path))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 40 and rows[-1]["eval/accuracy"] > 0.9
    info = json.loads((tmp_path / "run" / "data.json").read_text())
    assert info["test_problems"] > 0 and info["train_problems"] + info["test_problems"] == 60
    rm, tok, loss = load_reward_model(final)
    out, _, _ = head_outputs(rm, tok, ["q1?", "q1?"], ["yes 1", "no 0"], 32)
    assert loss.reward(out)[0] > loss.reward(out)[1]


@pytest.mark.parametrize(
    "loss, options, extra",
    [
        ("bt_margin", {"margin_mode": "subtract"}, {"margin": 0.5}),
        ("bt_smooth", {"epsilon": 0.1, "flip_below": 0.1}, {"strength": 0.9}),
        ("gpm", {"k": 2, "gate": True}, {}),
        ("ordinal", {"num_ratings": 5, "regions": {"good": [4, 5]}}, {"chosen_level": "good"}),
    ],
)
def test_every_pair_loss_trains_end_to_end(tmp_path, loss, options, extra):
    pairs = learnable_pairs(30)
    for p in pairs:
        for k, v in extra.items():
            setattr(p, k, v)
    write_jsonl(pairs, tmp_path / "pairs.jsonl")
    final = train(config(tmp_path, loss=loss, loss_options=options, max_steps=30))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["eval/accuracy"] > 0.8, rows[-1]
    assert load_reward_model(final)[0].spec.loss == loss


def test_mean_pooling_trains_pairs_and_ratings(tmp_path):
    write_jsonl(learnable_pairs(30), tmp_path / "pairs.jsonl")
    final = train(config(tmp_path, pooling="mean", max_steps=30))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["eval/accuracy"] > 0.8, rows[-1]
    assert load_reward_model(final)[0].spec.pooling == "mean"
    ratings = [
        {"prompt": f"q{i}", "response": "good" if i % 2 else "bad", "ratings": {"h": i % 2}}
        for i in range(60)
    ]
    (tmp_path / "ratings.jsonl").write_text("\n".join(json.dumps(r) for r in ratings))
    cfg = config(
        tmp_path,
        pooling="mean",
        loss="regression",
        loss_options={"attributes": ["h"], "scale": [0, 1]},
        data=[{"path": str(tmp_path / "ratings.jsonl")}],
        output_dir=str(tmp_path / "reg"),
    )
    rm, tok, _ = load_reward_model(train(cfg))
    out, _, _ = head_outputs(rm, tok, ["q1", "q2"], ["good", "bad"], 32)
    assert out[0, 0] > out[1, 0] + 0.3


def test_a_loss_missing_its_data_field_names_the_problem(tmp_path):
    write_jsonl(learnable_pairs(5), tmp_path / "pairs.jsonl")
    with pytest.raises(ValueError, match="needs `margin` on every pair; problem 'p"):
        train(config(tmp_path, loss="bt_margin", max_steps=1))


def test_regression_on_ratings(tmp_path):
    rows = [
        {
            "prompt": f"q{i}",
            "response": "good" if i % 2 else "bad",
            "ratings": {"h": 4 * (i % 2)},
            "problem_id": f"p{i}",
        }
        for i in range(80)
    ]
    (tmp_path / "ratings.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cfg = config(
        tmp_path,
        loss="regression",
        loss_options={"attributes": ["h"], "scale": [0, 4]},
        max_steps=40,
        data=[{"path": str(tmp_path / "ratings.jsonl")}],
    )
    final = train(cfg)
    rm, tok, loss = load_reward_model(final)
    out, _, _ = head_outputs(rm, tok, ["q1", "q2"], ["good", "bad"], 32)
    assert out[0, 0] > 0.7 and out[1, 0] < 0.3  # ratings scaled to [0, 1]
    rows[3]["ratings"]["h"] = 9
    (tmp_path / "ratings.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match=r"ratings\.jsonl:4: rating 'h' = 9.0 is outside"):
        train(cfg)


def test_checkpoint_resume_gives_the_uninterrupted_run(tmp_path):
    write_jsonl(learnable_pairs(10), tmp_path / "pairs.jsonl")
    whole = train(
        config(tmp_path, max_steps=4, lr_scheduler="linear", output_dir=str(tmp_path / "a"))
    )
    train(
        config(
            tmp_path,
            max_steps=4,
            save_every=2,
            lr_scheduler="linear",
            output_dir=str(tmp_path / "b"),
        )
    )
    resumed = train(
        config(
            tmp_path,
            max_steps=4,
            lr_scheduler="linear",
            resume_from=str(tmp_path / "b" / "checkpoint-2"),
            output_dir=str(tmp_path / "c"),
        )
    )
    a, tok, _ = load_reward_model(whole)
    c, _, _ = load_reward_model(resumed)
    x = head_outputs(a, tok, ["q"], ["yes"], 32)[0]
    y = head_outputs(c, tok, ["q"], ["yes"], 32)[0]
    assert torch.allclose(x, y, atol=1e-6)
    short = train(
        config(tmp_path, max_steps=2, lr_scheduler="linear", output_dir=str(tmp_path / "d"))
    )
    z = head_outputs(load_reward_model(short)[0], tok, ["q"], ["yes"], 32)[0]
    assert not torch.allclose(x, z, atol=1e-4)  # steps 3-4 did change the model
    with pytest.raises(FileNotFoundError, match="not a reward-model checkpoint"):
        train(config(tmp_path, resume_from=str(tmp_path)))


def test_lora_on_the_top_layers_only(tmp_path):
    write_jsonl(learnable_pairs(10), tmp_path / "pairs.jsonl")
    cfg = config(
        tmp_path, tiny_model={**TINY, "num_layers": 3}, lora_r=4, lora_layers=1, max_steps=2
    )
    from rewardkit_rm.losses import build_loss
    from rewardkit_rm.model import RMSpec, build_reward_model

    rm, _ = build_reward_model("tiny", RMSpec(), cfg.tiny_model, cfg.lora())
    lora = [n for n, p in rm.named_parameters() if p.requires_grad and "lora_" in n]
    assert lora and all(".layers.2." in n for n in lora), lora
    assert build_loss("bt").out_dim == rm.head.out_features
    final = train(cfg)  # and the run trains and saves with it (LoRA merged)
    assert load_reward_model(final)[0].spec.loss == "bt"


def test_the_shipped_configs_load():
    configs = sorted(Path(__file__).parents[2].joinpath("configs", "rm").glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = RMConfig.load(path)
        assert cfg.data, path


def test_cli_train_with_overrides(tmp_path, capsys):
    write_jsonl(learnable_pairs(10), tmp_path / "pairs.jsonl")
    (tmp_path / "c.yaml").write_text(
        f"model: tiny\ntiny_model: {json.dumps(TINY)}\nmax_length: 32\nprogress: false\n"
        f"data: [{{path: {tmp_path / 'pairs.jsonl'}}}]\noutput_dir: {tmp_path / 'run'}\n"
    )
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--set", "max_steps=2"]) == 0
    assert (tmp_path / "run" / "final" / "rm_config.json").is_file()
    # a second fresh run in the same folder starts its metrics anew (no stale rows)
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--set", "max_steps=3"]) == 0
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").open()]
    assert steps == [3]
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--set", "max_stps=2"]) == 2
    assert "unknown config key 'max_stps'" in capsys.readouterr().err
