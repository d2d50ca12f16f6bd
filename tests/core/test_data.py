"""Tests for rewardkit.data (spec core.md section 4): left padding, token-budget micro-batches in
padded and packed layouts, the CUDA layout switch, and per-token log-probs on a tiny model."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.masking_utils import create_causal_mask, find_packed_sequence_indices
from transformers.modeling_flash_attention_utils import prepare_fa_kwargs_from_position_ids

from rewardkit import data
from rewardkit.data import (
    MicroBatch,
    TrainSequence,
    completion_logprobs,
    left_pad,
    make_micro_batches,
)
from rewardkit.tiny import build_tiny_model

# A: prompt [10, 11], completion [20, 21, 22] -> input [10, 11, 20, 21] (4 tokens)
# B: prompt [12],     completion [23]         -> input [12]             (1 token)
A = TrainSequence([10, 11], [20, 21, 22], index=0)
B = TrainSequence([12], [23], index=1)


def seq_with_length(n: int, index: int) -> TrainSequence:
    """A one-token prompt and an n-token completion: the model input has exactly n tokens."""
    return TrainSequence([5], [6] * n, index)


# ---------------------------------------------------------------- CUDA layout switch


def test_cuda_layout_follows_the_device(monkeypatch):
    assert data._cuda_layout("cpu") == (1, False)
    assert data._cuda_layout(torch.device("cpu")) == (1, False)
    assert data._cuda_layout("cuda") == (8, torch.cuda.is_available())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert data._cuda_layout("cuda") == (8, True)
    assert data._cuda_layout("cuda:1") == (8, True)
    assert data._cuda_layout(0) == (8, True)  # a bare ordinal is a CUDA device
    assert data._cuda_layout("cpu") == (1, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert data._cuda_layout("cuda") == (8, False)  # nothing to pin without a CUDA runtime


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinning needs CUDA")
def test_pinned_on_cuda_not_on_cpu():
    for mb in make_micro_batches([A, B], 100, "padded", device="cuda"):
        assert mb.input_ids.is_pinned() and mb.target_positions.is_pinned()
    assert left_pad([[1, 2]], 0, "cuda")["input_ids"].is_pinned()
    assert not make_micro_batches([A, B], 100, "padded", device="cpu")[0].input_ids.is_pinned()


# ---------------------------------------------------------------- left padding


def test_left_pad_cpu():
    out = left_pad([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert out["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert out["input_ids"].dtype == torch.long and not out["input_ids"].is_pinned()


def test_left_pad_cuda_pads_to_multiple_of_8():
    out = left_pad([[5, 6, 7], [8]], pad_id=9, device="cuda")
    assert out["input_ids"].tolist() == [[9] * 5 + [5, 6, 7], [9] * 7 + [8]]
    assert out["attention_mask"].tolist() == [[0] * 5 + [1] * 3, [0] * 7 + [1]]
    nine = left_pad([[1] * 9], pad_id=0, device="cuda")["input_ids"]
    assert nine.shape == (1, 16)  # 9 rounded up to a multiple of 8


def test_left_pad_errors():
    with pytest.raises(ValueError, match="no prompts"):
        left_pad([], 0)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        left_pad([[1], []], 0)


# ---------------------------------------------------------------- layouts by hand


def test_padded_layout_by_hand():
    (mb,) = make_micro_batches([A, B], 100, "padded")
    assert mb.input_ids.tolist() == [[10, 11, 20, 21], [12, 0, 0, 0]]
    assert mb.attention_mask.tolist() == [[1, 1, 1, 1], [1, 0, 0, 0]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    # A's completion token t is predicted at input position 2 - 1 + t = 1, 2, 3 (row 0);
    # B's at 1 - 1 + 0 = 0 of row 1, flat 1 * 4 + 0 = 4
    assert mb.target_positions.tolist() == [1, 2, 3, 4]
    assert mb.target_ids.tolist() == [20, 21, 22, 23]
    assert mb.rows.tolist() == [0, 0, 0, 1]
    assert mb.cols.tolist() == [0, 1, 2, 0]
    assert mb.num_tokens == 5


def test_packed_layout_by_hand():
    (mb,) = make_micro_batches([A, B], 100, "packed")
    assert mb.attention_mask is None
    assert mb.input_ids.tolist() == [[10, 11, 20, 21, 12]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 3, 0]]
    assert mb.target_positions.tolist() == [1, 2, 3, 4]  # B starts at flat 4, 4 + 1 - 1 = 4
    assert mb.target_ids.tolist() == [20, 21, 22, 23]
    assert mb.rows.tolist() == [0, 0, 0, 1] and mb.cols.tolist() == [0, 1, 2, 0]
    assert mb.num_tokens == 5


def test_cuda_layout_pads_micro_batches_to_multiple_of_8():
    (padded,) = make_micro_batches([A, B], 100, "padded", pad_id=7, device="cuda")
    assert padded.input_ids.tolist() == [[10, 11, 20, 21] + [7] * 4, [12] + [7] * 7]
    assert padded.attention_mask.sum().item() == 5
    assert padded.target_positions.tolist() == [1, 2, 3, 8]  # row 1 starts at flat 8
    (packed,) = make_micro_batches([A, B], 100, "packed", pad_id=7, device="cuda")
    assert packed.input_ids.tolist() == [[10, 11, 20, 21, 12, 7, 7, 7]]
    # the 3 pad tokens form their own sequence, restarting at 0
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 0, 1, 2]]
    assert packed.num_tokens == 5


def test_transformers_turns_restarting_positions_into_separate_sequences():
    """The claim packing rests on, checked against the installed transformers: with no
    attention mask and no cache, restarting position_ids give a block-diagonal causal mask
    (sdpa) and cu_seqlens for the flash-attention varlen kernel."""
    (mb,) = make_micro_batches([A, B], 100, "packed", device="cuda")  # [0,1,2,3, 0, 0,1,2]
    assert find_packed_sequence_indices(mb.position_ids).tolist() == [[0, 0, 0, 0, 1, 2, 2, 2]]
    model, _ = build_tiny_model(num_layers=1, hidden_size=16, num_heads=2)
    embeds = torch.zeros(1, 8, 16)
    mask = create_causal_mask(model.config, embeds, None, None, position_ids=mb.position_ids)
    causal = torch.ones(8, 8).tril().bool()
    segment = torch.tensor([0, 0, 0, 0, 1, 2, 2, 2])
    expected = causal & (segment[:, None] == segment[None, :])
    assert mask.shape == (1, 1, 8, 8)
    assert torch.equal(mask[0, 0], expected)
    (cu_q, cu_k), (max_q, max_k) = prepare_fa_kwargs_from_position_ids(mb.position_ids)
    assert cu_q.tolist() == cu_k.tolist() == [0, 4, 5, 8]
    assert int(max_q) == int(max_k) == 4


# ---------------------------------------------------------------- binning


def test_packed_bins_are_balanced_by_hand():
    # lengths 5 4 3 3 2 1, budget 10: ceil(18 / 10) = 2 bins, longest first into the emptier:
    # 5->b0 (5), 4->b1 (4), 3->b1 (7), 3->b0 (8), 2->b1 (9), 1->b0 (9)
    seqs = [seq_with_length(n, i) for i, n in enumerate([5, 4, 3, 3, 2, 1])]
    mbs = make_micro_batches(seqs, 10, "packed")
    assert [mb.num_tokens for mb in mbs] == [9, 9]
    assert [sorted(set(mb.rows.tolist())) for mb in mbs] == [[0, 3, 5], [1, 2, 4]]


def test_packed_opens_a_bin_when_none_fits():
    # lengths 6 6 6, budget 10: ceil(18 / 10) = 2 bins, the third 6 fits neither (12 > 10)
    seqs = [seq_with_length(6, i) for i in range(3)]
    assert [mb.num_tokens for mb in make_micro_batches(seqs, 10, "packed")] == [6, 6, 6]
    # lengths 3 3 3 3, budget 5: ceil(12 / 5) = 3 bins; the fourth 3 would make 6 > 5
    seqs = [seq_with_length(3, i) for i in range(4)]
    assert [mb.num_tokens for mb in make_micro_batches(seqs, 5, "packed")] == [3, 3, 3, 3]
    # budget 6: ceil(12 / 6) = 2 bins, 3->b0, 3->b1, 3->b0 (6 <= 6), 3->b1 (6 <= 6)
    assert [mb.num_tokens for mb in make_micro_batches(seqs, 6, "packed")] == [6, 6]


def test_padded_bins_are_balanced_by_hand():
    # five sequences of 4 tokens, budget 16: fewest runs is 2 (4 rows = 16, then 1 row);
    # the smallest cap still giving 2 runs is 12 (3 rows), so the runs hold 3 and 2 rows
    seqs = [seq_with_length(4, i) for i in range(5)]
    mbs = make_micro_batches(seqs, 16, "padded")
    assert [tuple(mb.input_ids.shape) for mb in mbs] == [(3, 4), (2, 4)]


def test_padded_bins_group_similar_lengths():
    # lengths 8 8 2 2 2 2 2 2 2 2, budget 16: [8, 8] (2 x 8 = 16), then the eight 2s (8 x 2 = 16)
    seqs = [seq_with_length(n, i) for i, n in enumerate([2, 8, 2, 2, 8, 2, 2, 2, 2, 2])]
    mbs = make_micro_batches(seqs, 16, "padded")
    assert [tuple(mb.input_ids.shape) for mb in mbs] == [(2, 8), (8, 2)]
    assert sorted(set(mbs[0].rows.tolist())) == [1, 4]


def test_cuda_padding_counts_against_the_budget():
    # three inputs of 5 tokens padded to 8 on CUDA: 2 rows x 8 = 16 <= 16, then 1 row
    seqs = [seq_with_length(5, i) for i in range(3)]
    mbs = make_micro_batches(seqs, 16, "padded", device="cuda")
    assert [tuple(mb.input_ids.shape) for mb in mbs] == [(2, 8), (1, 8)]
    # packed: 5 + 5 = 10 rounds to 16 <= 16; adding the third (15 -> 16) still fits
    (packed,) = make_micro_batches(seqs, 16, "packed", device="cuda")
    assert packed.input_ids.shape == (1, 16) and packed.num_tokens == 15


def _check_micro_batches(seqs, mbs, budget, mode, multiple):
    covered = []
    for mb in mbs:
        rows, width = mb.input_ids.shape
        n_seqs = len(set(mb.rows.tolist()))
        assert mb.input_ids.numel() <= budget or n_seqs == 1, "budget exceeded"
        assert width % multiple == 0
        if mode == "packed":
            assert rows == 1 and mb.attention_mask is None
            assert width - mb.num_tokens < multiple
        else:
            assert rows == n_seqs and mb.attention_mask.sum().item() == mb.num_tokens
        flat_ids = mb.input_ids.reshape(-1)
        flat_pos = mb.position_ids.reshape(-1)
        by_index = {s.index: s for s in seqs}
        for p, y, r, t in zip(
            *(x.tolist() for x in (mb.target_positions, mb.target_ids, mb.rows, mb.cols)),
            strict=True,
        ):
            s = by_index[r]
            assert y == s.completion_ids[t]
            # the predicting logit sits at position len(prompt) - 1 + t of its sequence, and
            # the input token there is the one just before the target
            assert flat_pos[p] == len(s.prompt_ids) - 1 + t
            before = s.prompt_ids[-1] if t == 0 else s.completion_ids[t - 1]
            assert flat_ids[p] == before
            covered.append((r, t))
    expected = [(s.index, t) for s in seqs for t in range(len(s.completion_ids))]
    assert sorted(covered) == sorted(expected), "each completion token exactly once"


@settings(max_examples=150, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 12)), min_size=1, max_size=25),
    budget=st.integers(1, 80),
    mode=st.sampled_from(["padded", "packed"]),
    device=st.sampled_from(["cpu", "cuda"]),
    shuffle_seed=st.integers(0, 1000),
)
def test_budget_and_coverage_property(shapes, budget, mode, device, shuffle_seed):
    indices = list(range(len(shapes)))
    random.Random(shuffle_seed).shuffle(indices)  # sample index need not follow list order
    seqs = [
        TrainSequence([100 + k for k in range(p)], [(i * 7 + k) % 50 + 4 for k in range(c)], index)
        for i, ((p, c), index) in enumerate(zip(shapes, indices, strict=True))
    ]
    mbs = make_micro_batches(seqs, budget, mode, device=device)
    multiple = 8 if device == "cuda" else 1
    _check_micro_batches(seqs, mbs, budget, mode, multiple)


def test_budget_on_a_grid_of_small_cases():
    """Budget edges that random draws rarely hit: equal and near-equal lengths whose sums and
    row products land exactly on, and one past, the budget."""
    for mode in ("padded", "packed"):
        for device, multiple in (("cpu", 1), ("cuda", 8)):
            for n in range(1, 6):
                for length in range(1, 5):
                    for extra in (0, 1):
                        seqs = [seq_with_length(length + extra * (i % 2), i) for i in range(n)]
                        for budget in range(1, n * (length + 1) + 10):
                            mbs = make_micro_batches(seqs, budget, mode, device=device)
                            _check_micro_batches(seqs, mbs, budget, mode, multiple)


def test_empty_completions_are_left_out():
    seqs = [
        TrainSequence([1], [], 0),
        TrainSequence([10, 11], [20, 21, 22], 1),
        TrainSequence([], [], 2),
    ]
    (mb,) = make_micro_batches(seqs, 100, "packed")
    assert set(mb.rows.tolist()) == {1}
    assert make_micro_batches([TrainSequence([1], [], 0)], 100) == []


@pytest.mark.parametrize(
    "seqs, budget, mode, error, match",
    [
        ([], 10, "padded", ValueError, "no sequences"),
        ([A], 0, "padded", ValueError, "token_budget"),
        ([A], -5, "packed", ValueError, "token_budget"),
        ([A], 2.5, "packed", ValueError, "token_budget"),
        ([A], True, "packed", ValueError, "token_budget"),
        ([A], 10, "ragged", ValueError, "mode"),
        ([A, TrainSequence([1], [2], 0)], 10, "padded", ValueError, "share index 0"),
        ([TrainSequence([], [2], 3)], 10, "padded", ValueError, "index 3.*empty prompt"),
        ([TrainSequence([1], [2], -1)], 10, "padded", ValueError, "index"),
        ([A, ([1], [2], 1)], 10, "padded", TypeError, r"seqs\[1\]"),
    ],
)
def test_make_micro_batches_errors(seqs, budget, mode, error, match):
    with pytest.raises(error, match=match):
        make_micro_batches(seqs, budget, mode)


# ---------------------------------------------------------------- log-probs on a tiny model


@pytest.fixture(scope="module")
def model():
    model, _ = build_tiny_model(seed=0)
    # use_cache defaults to True in the config; with a cache transformers skips the packed
    # detection, so this keeps the test able to catch completion_logprobs forgetting it
    assert model.config.use_cache
    return model


@pytest.fixture(scope="module")
def seqs():
    rng = random.Random(0)
    return [
        TrainSequence(
            [rng.randrange(4, 100) for _ in range(rng.randint(1, 9))],
            [rng.randrange(4, 100) for _ in range(rng.randint(1, 12))],
            index,
        )
        for index in [3, 0, 6, 1, 5, 2, 4]
    ]


def _reference(model, seqs, temperature=1.0):
    """Each sequence alone through the model, no padding, no packing."""
    width = max(len(s.completion_ids) for s in seqs)
    logprobs, entropy = torch.zeros(len(seqs), width), torch.zeros(len(seqs), width)
    with torch.no_grad():
        for s in seqs:
            logits = model(torch.tensor([s.prompt_ids + s.completion_ids])).logits[0]
            logp = torch.log_softmax(logits / temperature, dim=-1)
            for t, y in enumerate(s.completion_ids):
                row = logp[len(s.prompt_ids) - 1 + t]
                logprobs[s.index, t] = row[y]
                entropy[s.index, t] = -(row.exp() * row).sum()
    return logprobs, entropy


def _batched(model, mbs, shape, temperature=1.0):
    logprobs, entropy = torch.zeros(shape), torch.zeros(shape)
    with torch.no_grad():
        for mb in mbs:
            lp, ent = completion_logprobs(model, mb, temperature, with_entropy=True)
            logprobs[mb.rows, mb.cols] = lp  # as the trainer places them
            entropy[mb.rows, mb.cols] = ent
    return logprobs, entropy


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("budget", [8, 40, 1000])
def test_packed_and_padded_match_the_unbatched_model(model, seqs, budget, device):
    ref_lp, ref_ent = _reference(model, seqs)
    padded = _batched(
        model, make_micro_batches(seqs, budget, "padded", device=device), ref_lp.shape
    )
    packed = _batched(
        model, make_micro_batches(seqs, budget, "packed", device=device), ref_lp.shape
    )
    for got in (padded, packed):
        torch.testing.assert_close(got[0], ref_lp, rtol=0, atol=1e-5)
        torch.testing.assert_close(got[1], ref_ent, rtol=0, atol=1e-5)
    torch.testing.assert_close(packed[0], padded[0], rtol=0, atol=1e-5)
    assert ref_lp.abs().sum() > 0  # zero cells are only past each completion's end


def test_temperature_divides_the_logits(model, seqs):
    ref_lp, _ = _reference(model, seqs, temperature=0.7)
    got, _ = _batched(model, make_micro_batches(seqs, 1000, "packed"), ref_lp.shape, 0.7)
    torch.testing.assert_close(got, ref_lp, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        completion_logprobs(model, make_micro_batches(seqs, 1000)[0], temperature=0.0)


def test_packing_without_restarting_positions_would_leak(model, seqs):
    """Control: the same packed row with positions 0..L-1 (one long sequence) changes the
    log-probs of every sequence but the first, so the match above depends on the restart."""
    (mb,) = make_micro_batches(seqs, 1000, "packed")
    ok, _ = completion_logprobs(model, mb)
    width = mb.input_ids.shape[1]
    leaky = MicroBatch(**{**mb.__dict__, "position_ids": torch.arange(width)[None]})
    bad, _ = completion_logprobs(model, leaky)
    first = mb.rows == mb.rows[0]
    torch.testing.assert_close(bad[first], ok[first], rtol=0, atol=1e-5)
    assert (bad[~first] - ok[~first]).abs().max() > 1e-2


def test_packed_and_padded_gradients_match(seqs):
    grads = {}
    for mode in ("padded", "packed"):
        model, _ = build_tiny_model(seed=0, num_layers=1, hidden_size=32, num_heads=2)
        model.train()
        for mb in make_micro_batches(seqs, 30, mode):
            lp, _ = completion_logprobs(model, mb)
            lp.sum().backward()
        grads[mode] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name, grad in grads["padded"].items():
        torch.testing.assert_close(grads["packed"][name], grad, rtol=0, atol=1e-5)


def test_micro_batch_to_moves_every_tensor():
    (mb,) = make_micro_batches([A, B], 100, "padded")
    moved = mb.to("meta")
    assert all(
        getattr(moved, f).device.type == "meta" for f in ("input_ids", "attention_mask", "cols")
    )
    assert moved.num_tokens == mb.num_tokens
