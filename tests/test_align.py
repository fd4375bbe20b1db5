"""Chapter 9's post-training pieces: SFT masking, the Bradley-Terry loss, PPO's clipped objective,
GAE and DPO, each against hand-computed values and autograd on the written formula.
(The agreement with TRL's trainers is in test_align_trl.py.)"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuraltext.align import dpo_batch_loss, dpo_loss, evaluate_dpo, reference_logps
from neuraltext.align import (PPOConfig, clipped_surrogate, gae, grpo_advantages, group_advantages,
                              kl_penalized_reward, rloo_advantages, rollout, ppo_update, train_ppo)
from neuraltext.align import (RewardModel, bradley_terry_loss, evaluate_rewards, last_token_index,
                              pairwise_accuracy, pool_last, reward_loss)
from neuraltext.align import (IGNORE_INDEX, completion_logps, pack, pair_batch, sft_batch, sft_loss,
                              token_logps)
from neuraltext.data.preferences import judge, preference_data
from neuraltext.gpt import GPT, GPTConfig
from neuraltext.vocab import Vocab

PAD = 0


def tiny_gpt(seed=0, vocab=20, d=16):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, max_len=32, d_model=d, n_heads=2, n_layers=1)).double()


# ------------------------------------------------------------------------------------------- SFT
def test_sft_batch_masks_prompt_and_padding():
    batch = sft_batch([([5, 6, 7], [8, 9]), ([5], [10, 11, 12])], pad_id=PAD)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 10, 11, 12, PAD]]
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 9], [-100, 10, 11, 12, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert batch["completion_mask"].tolist() == [[0, 0, 0, 1, 1], [0, 1, 1, 1, 0]]


def test_sft_loss_counts_completion_tokens_only():
    model = tiny_gpt()
    batch = sft_batch([([5, 6, 7], [8, 9]), ([5], [10, 11, 12])], pad_id=PAD)
    logits, _ = model(batch["input_ids"], attention_mask=batch["attention_mask"])
    logp = torch.log_softmax(logits, -1)
    # by hand: positions (row, t) whose *next* token is a completion token
    terms = [logp[0, 2, 8], logp[0, 3, 9], logp[1, 0, 10], logp[1, 1, 11], logp[1, 2, 12]]
    expected = -torch.stack(terms).mean()
    torch.testing.assert_close(sft_loss(model, batch), expected)
    # changing a prompt token's *label* cannot matter; changing padding cannot matter
    other = {k: v.clone() for k, v in batch.items()}
    other["input_ids"][1, 4] = 17
    torch.testing.assert_close(sft_loss(model, other), expected)


def test_completion_logps_sums_the_completion_tokens():
    model = tiny_gpt()
    batch = sft_batch([([5, 6], [8, 9, 3])], pad_id=PAD)
    logits, _ = model(batch["input_ids"])
    logp = torch.log_softmax(logits, -1)[0]
    expected = logp[1, 8] + logp[2, 9] + logp[3, 3]
    got = completion_logps(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    torch.testing.assert_close(got, expected[None])
    assert token_logps(logits, batch["input_ids"]).shape == (1, 4)


def test_pack_fills_blocks_and_keeps_prompt_labels_masked():
    packed = pack([([5, 6], [7]), ([8], [9, 10]), ([11], [12])], block_size=3)
    assert packed["input_ids"].tolist() == [[5, 6, 7], [8, 9, 10]]
    assert packed["labels"].tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7], [IGNORE_INDEX, 9, 10]]
    with pytest.raises(ValueError, match="block_size"):
        pack([([5], [6])], block_size=8)


def test_pair_batch_layout_is_chosen_then_rejected():
    b = pair_batch([[5], [6, 7]], [[8], [9]], [[10, 11], [12]], pad_id=PAD)
    assert b["input_ids"].tolist() == [[5, 8, 0], [6, 7, 9], [5, 10, 11], [6, 7, 12]]
    assert b["completion_mask"].tolist() == [[0, 1, 0], [0, 0, 1], [0, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="one length"):
        pair_batch([[5]], [[6]], [], pad_id=PAD)


# ----------------------------------------------------------------------------------- reward model
def test_bradley_terry_loss_hand_values():
    # r_w - r_l = 0 -> log 2; = 2 -> log(1 + e^-2); = -1 -> log(1 + e)
    r_w, r_l = torch.tensor([1.0, 3.0, 0.0]), torch.tensor([1.0, 1.0, 1.0])
    expected = (math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.e)) / 3
    assert bradley_terry_loss(r_w, r_l).item() == pytest.approx(expected, abs=1e-6)
    assert bradley_terry_loss(r_w + 5, r_l + 5).item() == pytest.approx(expected, abs=1e-6)  # shift-invariant
    assert pairwise_accuracy(r_w, r_l).item() == pytest.approx(1 / 3)


def test_bradley_terry_gradient_equals_the_formula():
    r_w = torch.randn(5, dtype=torch.double, requires_grad=True)
    r_l = torch.randn(5, dtype=torch.double, requires_grad=True)
    bradley_terry_loss(r_w, r_l).backward()
    s = torch.sigmoid(-(r_w - r_l)).detach() / 5  # dL/dr_w = -sigma(r_l - r_w) / B
    torch.testing.assert_close(r_w.grad, -s)
    torch.testing.assert_close(r_l.grad, s)


def test_last_token_index_left_and_right_padding():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [1, 3, 3]
    hidden = torch.arange(24.0).view(3, 4, 2)
    assert pool_last(hidden, mask).tolist() == [[2.0, 3.0], [14.0, 15.0], [22.0, 23.0]]


def test_reward_model_reads_the_last_real_token_whatever_the_padding():
    rm = RewardModel(tiny_gpt(), d_model=16).double()
    seq = torch.tensor([[5, 6, 7]])
    right = rm(torch.tensor([[5, 6, 7, PAD, PAD]]), torch.tensor([[1, 1, 1, 0, 0]]))
    left = rm(torch.tensor([[PAD, PAD, 5, 6, 7]]), torch.tensor([[0, 0, 1, 1, 1]]))
    alone = rm(seq)
    torch.testing.assert_close(right, alone)
    torch.testing.assert_close(left, alone)
    with pytest.raises(ValueError, match="final_norm"):
        RewardModel(tiny_gpt(), 16, final_norm="nope")


# ------------------------------------------------------------------------------------------ PPO
@pytest.mark.parametrize("A", [1.0, -1.0])
def test_clipped_surrogate_middle_and_both_boundaries(A):
    eps = 0.2
    rho = torch.tensor([[0.5, 0.9, 1.0, 1.1, 1.5]], dtype=torch.double)
    logp = torch.log(rho).requires_grad_(True)
    old = torch.zeros_like(logp)
    mask = torch.ones_like(logp)
    loss, stats = clipped_surrogate(logp, old, torch.tensor([A], dtype=torch.double), mask, eps)
    # min(rho A, clip(rho) A) token by token, by hand
    clipped = [0.8, 0.9, 1.0, 1.1, 1.2]
    objective = [min(r * A, c * A) for r, c in zip(rho[0].tolist(), clipped)]
    assert loss.item() == pytest.approx(-sum(objective) / 5, abs=1e-12)
    assert stats["clip_fraction"].item() == pytest.approx(2 / 5)
    loss.backward()
    # d(-rho A)/d log rho = -rho A / N where the unclipped term is the min; 0 where the clip is the min
    if A > 0:  # rho = 0.5 below 1 - eps: min picks rho A (pessimistic), the gradient flows; 1.5 is clipped
        expected = [-0.5 / 5, -0.9 / 5, -1.0 / 5, -1.1 / 5, 0.0]
    else:  # rho = 0.5 is clipped; rho = 1.5 above 1 + eps: min picks rho A (A < 0), the gradient flows
        expected = [0.0, 0.9 / 5, 1.0 / 5, 1.1 / 5, 1.5 / 5]
    torch.testing.assert_close(logp.grad[0], torch.tensor(expected, dtype=torch.double))


def test_clipped_surrogate_means_per_answer_then_over_answers():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    A = torch.tensor([[3.0, 9.0, 9.0], [1.0, 2.0, 3.0]])
    loss, _ = clipped_surrogate(logp, logp, A, mask)
    assert loss.item() == pytest.approx(-(3.0 + 2.0) / 2)


def test_kl_penalized_reward_and_baseline():
    score = torch.tensor([1.0, 2.0])
    logp = torch.tensor([[-1.0, -2.0], [-1.0, -1.0]])
    ref = torch.tensor([[-1.5, -2.0], [-2.0, -1.0]])
    R, kl = kl_penalized_reward(score, logp, ref, torch.tensor([[1.0, 1.0], [1.0, 0.0]]), beta=0.1)
    assert kl.tolist() == pytest.approx([0.5, 1.0])
    assert R.tolist() == pytest.approx([0.95, 1.9])


def test_rloo_and_grpo_advantages_by_hand():
    R = torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 16.0])  # two prompts, k = 3 answers each
    # RLOO: R_i minus the mean of the same prompt's other answers
    assert rloo_advantages(R, 3).tolist() == pytest.approx([1 - 2.5, 2 - 2.0, 3 - 1.5, 10 - 13, 10 - 13, 16 - 10])
    # GRPO: (R_i - group mean) / (group std, Bessel, + 1e-4); group 1: mean 2, std 1; group 2: mean 12, std sqrt(12)
    s2 = math.sqrt(12) + 1e-4
    assert grpo_advantages(R, 3).tolist() == pytest.approx([-1 / 1.0001, 0.0, 1 / 1.0001, -2 / s2, -2 / s2, 4 / s2])
    assert group_advantages(R, 3, "grpo").tolist() == grpo_advantages(R, 3).tolist()
    with pytest.raises(ValueError, match=r"\(n_prompts \* k,\).*got shape \(6,\) and k = 4"):
        rloo_advantages(R, 4)
    with pytest.raises(ValueError, match="baseline must be one of"):
        group_advantages(R, 3, "batch")


@pytest.mark.parametrize("fn", [rloo_advantages, grpo_advantages])
def test_advantages_come_from_the_same_prompts_answers_only(fn):
    """An easy prompt (all answers score high) does not lower a hard prompt's advantages, and an
    answer's baseline in RLOO does not contain its own reward."""
    R = torch.tensor([0.0, 1.0, 0.5, 5.0, 7.0, 6.0])
    shifted = R.clone()
    shifted[3:] += 100.0
    torch.testing.assert_close(fn(shifted, 3)[:3], fn(R, 3)[:3])
    torch.testing.assert_close(fn(R, 3).view(2, 3).sum(1), torch.zeros(2), atol=1e-5, rtol=0)


def test_ppo_config_checks_its_fields():
    with pytest.raises(ValueError, match="samples_per_prompt must be >= 2"):
        PPOConfig(samples_per_prompt=1)
    with pytest.raises(ValueError, match="baseline must be one of"):
        PPOConfig(baseline="mean")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        PPOConfig(temperature=0.0)


def test_gae_limits():
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    V = torch.tensor([[0.2, 0.4, 0.6, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    A1, ret1 = gae(r, V, mask, gamma=1.0, lam=1.0)  # Monte-Carlo return (1 everywhere) minus V
    assert A1[0, :3].tolist() == pytest.approx([0.8, 0.6, 0.4]) and A1[0, 3] == 0
    assert ret1[0, :3].tolist() == pytest.approx([1.0, 1.0, 1.0])
    A0, _ = gae(r, V, mask, gamma=1.0, lam=0.0)  # one-step TD errors r_t + V_{t+1} - V_t
    assert A0[0, :3].tolist() == pytest.approx([0.2, 0.2, 0.4])


def test_ppo_runs_and_records_reward_and_kl():
    torch.manual_seed(0)
    policy = GPT(GPTConfig(vocab_size=12, max_len=16, d_model=16, n_heads=2, n_layers=1))
    ref = GPT(GPTConfig(vocab_size=12, max_len=16, d_model=16, n_heads=2, n_layers=1))
    ref.load_state_dict(policy.state_dict())
    reward = lambda ids, mask: (ids == 7).float().sum(-1)  # noqa: E731  (reward: how many 7s)
    prompts = lambda step, n: (torch.full((n, 2), 5), torch.ones(n, 2, dtype=torch.long))  # noqa: E731
    cfg = PPOConfig(batch_size=4, samples_per_prompt=2, max_new_tokens=4, lr=1e-2, beta=0.01)
    hist = train_ppo(policy, ref, reward, prompts, cfg, steps=15, eos_id=3)
    assert len(hist.reward) == 15 and all(math.isfinite(x) for x in hist.kl)
    assert sum(hist.reward[-5:]) > sum(hist.reward[:5])  # the reward rises on this trivial task
    assert hist.kl[0] == pytest.approx(0.0, abs=1e-6)  # first rollout: policy == reference


@pytest.mark.parametrize("clip_eps", [-0.5, 0.0, 1.0, float("nan")])
def test_clipped_surrogate_rejects_a_clip_eps_outside_0_1(clip_eps):
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=r"clip_eps must be a number in \(0, 1\), got"):
        clipped_surrogate(z, z, torch.ones(1), torch.ones(1, 2), clip_eps)


def test_every_ppo_config_field_is_read(monkeypatch):
    """A config whose every field differs from the default reaches the call that uses it."""
    import dataclasses
    import neuraltext.align.ppo as ppo_module

    cfg = PPOConfig(batch_size=3, samples_per_prompt=5, baseline="grpo", max_new_tokens=3, temperature=0.7,
                    beta=0.3, clip_eps=0.15, ppo_epochs=3, lr=2e-3, max_grad_norm=0.5)
    defaults = PPOConfig()
    assert all(getattr(cfg, f.name) != getattr(defaults, f.name) for f in dataclasses.fields(PPOConfig))
    seen: dict[str, list] = {}

    def spy(name, fn, *keys):
        def wrapped(*args, **kwargs):
            seen.setdefault(name, []).append((args, kwargs))
            return fn(*args, **kwargs)
        monkeypatch.setattr(ppo_module, name, wrapped)

    for name in ("generate", "kl_penalized_reward", "group_advantages", "clipped_surrogate"):
        spy(name, getattr(ppo_module, name))
    norms = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, n: norms.append(n) or real_clip(params, n))
    asked, scored = [], []
    policy, ref = tiny_gpt(0).float(), tiny_gpt(0).float()

    def prompts(step, n):
        asked.append(n)
        return torch.arange(5, 5 + n)[:, None].repeat(1, 2), torch.ones(n, 2, dtype=torch.long)  # n different

    def reward(ids, mask):
        scored.append(ids[:, 0].clone())
        return torch.zeros(ids.shape[0])

    train_ppo(policy, ref, reward, prompts, cfg, steps=1, eos_id=3)
    assert asked == [3]  # batch_size prompts ...
    # ... each answered samples_per_prompt times, its answers consecutive (the baseline's groups)
    assert scored[0].tolist() == [5] * 5 + [6] * 5 + [7] * 5
    (_, gen_kw), = seen["generate"]
    assert gen_kw["max_new_tokens"] == 3 and gen_kw["temperature"] == 0.7
    assert seen["kl_penalized_reward"][0][0][-1] == 0.3
    assert seen["group_advantages"][0][0][1:] == (5, "grpo")
    assert len(seen["clipped_surrogate"]) == 3 and all(a[-1] == 0.15 for a, _ in seen["clipped_surrogate"])
    assert norms == [0.5] * 3


def test_ppo_runs_dropout_free_so_the_first_ratio_is_one():
    """Sampling, pi_old and the update all run with dropout off: before the first step of an update
    rho = 1 exactly (no clipped token, loss = -mean A), although the policy was in train mode with
    dropout 0.5; old log-probs equal the eval-mode ones; the caller's modes come back."""
    torch.manual_seed(0)
    cfg_model = GPTConfig(vocab_size=20, max_len=32, d_model=16, n_heads=2, n_layers=2, dropout=0.5)
    policy, ref = GPT(cfg_model).double(), GPT(cfg_model).double()
    policy.train(), ref.train()
    cfg = PPOConfig(batch_size=4, samples_per_prompt=2, max_new_tokens=5, ppo_epochs=1, lr=1e-9)
    ids, mask = torch.full((8, 3), 5), torch.ones(8, 3, dtype=torch.long)
    ro = rollout(policy, ref, lambda i, m: torch.arange(i.shape[0], dtype=torch.double), ids, mask, cfg, eos_id=3,
                 generator=torch.Generator().manual_seed(0))
    assert policy.training and ref.training  # modes restored
    policy.eval()
    again = completion_logps(policy, ro.input_ids, ro.attention_mask, ro.completion_mask, per_token=True)
    torch.testing.assert_close(ro.old_logps, again)
    policy.train()
    ro.advantages = group_advantages(ro.rewards, 2)
    stats = ppo_update(policy, torch.optim.SGD(policy.parameters(), lr=0.0), ro, cfg)
    assert stats["clip_fraction"].item() == 0.0
    assert stats["loss"].item() == pytest.approx(-ro.advantages.mean().item(), abs=1e-12)
    assert policy.training


def test_reference_and_evaluations_run_in_eval_mode_and_restore_it():
    """With dropout on, the frozen reference's log-probs and the held-out evaluations are the
    eval-mode (deterministic) numbers, and a model in train mode stays in train mode."""
    from neuraltext.align import policy_report

    torch.manual_seed(0)
    cfg_model = GPTConfig(vocab_size=20, max_len=32, d_model=16, n_heads=2, n_layers=2, dropout=0.5)
    policy, ref = GPT(cfg_model).double(), GPT(cfg_model).double()
    policy.load_state_dict(ref.state_dict())
    batch = pair_batch([[5, 6], [7]], [[8, 9], [10]], [[11], [12, 13]], pad_id=PAD)
    ref.train()
    with_ref = reference_logps(ref, batch)
    ref.eval()
    torch.testing.assert_close(with_ref["ref_logps"], completion_logps(ref, batch["input_ids"], batch["attention_mask"],
                                                                       batch["completion_mask"]))
    policy.train()
    assert evaluate_dpo(policy, [with_ref])["loss"] == pytest.approx(math.log(2), abs=1e-9)  # policy == ref
    assert policy.training
    rm = RewardModel(GPT(cfg_model), 16).double().train()
    first, second = evaluate_rewards(rm, [batch]), evaluate_rewards(rm, [batch])
    assert first == second and rm.training
    data = preference_data(n_train=8, n_test=8, seed=0)
    vocab = Vocab.build([t.split() for t in data.texts()], specials=("<pad>", "<unk>", "<s>", "</s>", "<mask>",
                                                                      "<user>", "<assistant>"))
    model = GPT(GPTConfig(vocab_size=len(vocab), max_len=48, d_model=16, n_heads=2, n_layers=1, dropout=0.5)).train()
    row = policy_report(model, model, vocab, data.test, data.test_prompts[:2], lambda i, m: torch.ones(i.shape[0]),
                        samples_per_prompt=2, max_new_tokens=4)
    assert row["reward margin"] == 0.0 and row["KL to reference"] == 0.0 and model.training


# ------------------------------------------------------------------------------------------ DPO
def test_dpo_loss_hand_value_and_implicit_rewards():
    beta = 0.5
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-3.0, -5.0, -4.0, -4.0))
    loss, st = dpo_loss(pc, pr, rc, rr, beta)
    # beta * ((-3 + 4) - (-5 + 4)) = 1 -> -log sigma(1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert st["chosen_rewards"].item() == pytest.approx(0.5) and st["rejected_rewards"].item() == pytest.approx(-0.5)
    assert st["margin"].item() == pytest.approx(1.0) and st["accuracy"].item() == 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"beta must be a positive finite number, got"):
            dpo_loss(pc, pr, rc, rr, beta=bad)


def test_dpo_gradient_equals_the_formula():
    beta, B = 0.1, 4
    pc, pr = (torch.randn(B, dtype=torch.double, requires_grad=True) for _ in range(2))
    rc, rr = torch.randn(B, dtype=torch.double), torch.randn(B, dtype=torch.double)
    dpo_loss(pc, pr, rc, rr, beta)[0].backward()
    z = beta * ((pc - rc) - (pr - rr)).detach()
    w = beta * torch.sigmoid(-z) / B  # the weight: how wrongly the implicit rewards rank the pair
    torch.testing.assert_close(pc.grad, -w)
    torch.testing.assert_close(pr.grad, w)


def test_dpo_from_a_model_equals_the_formula_on_its_logps():
    policy, ref = tiny_gpt(0), tiny_gpt(1)
    batch = reference_logps(ref, pair_batch([[5, 6], [7]], [[8, 9], [10]], [[11], [12, 13]], pad_id=PAD))
    lp = completion_logps(policy, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    ref_lp = completion_logps(ref, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    z = 0.1 * ((lp[:2] - ref_lp[:2]) - (lp[2:] - ref_lp[2:]))
    torch.testing.assert_close(dpo_batch_loss(policy, batch, beta=0.1), -F.logsigmoid(z).mean())
    stats = evaluate_dpo(policy, [batch], beta=0.1)
    assert stats["loss"] == pytest.approx(float(-F.logsigmoid(z).mean()))


# ----------------------------------------------------------------------------- preference data
def test_preference_data_is_seeded_split_and_judged():
    a, b = preference_data(seed=3), preference_data(seed=3)
    assert a.train == b.train and a.test == b.test and a.demonstrations == b.demonstrations
    assert not set(a.train_prompts) & set(a.test_prompts)  # held-out prompts never trained on
    assert all(judge(p.prompt, p.chosen) for p in a.train + a.test)
    assert not any(judge(p.prompt, p.rejected) for p in a.train + a.test)
    share = sum(judge(p, y) for p, y in a.demonstrations) / len(a.demonstrations)
    assert 0.35 < share < 0.65  # demonstrations are polite about half the time
    with pytest.raises(ValueError, match="test_share"):
        preference_data(test_share=2.0)


def test_reward_model_and_dpo_learn_the_preference_on_held_out_pairs():
    data = preference_data(n_train=256, n_test=64, seed=0)
    vocab = Vocab.build([t.split() for t in data.texts()])
    enc = lambda text, eos=False: vocab.encode(text.split(), eos=eos)  # noqa: E731

    def batches(pairs, bs=64):
        return [pair_batch([enc(p.prompt) for p in pairs[i:i + bs]], [enc(p.chosen, True) for p in pairs[i:i + bs]],
                           [enc(p.rejected, True) for p in pairs[i:i + bs]], pad_id=vocab.pad_id)
                for i in range(0, len(pairs), bs)]

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=len(vocab), max_len=48, d_model=32, n_heads=2, n_layers=1)
    rm = RewardModel(GPT(cfg), d_model=32)
    opt = torch.optim.AdamW(rm.parameters(), lr=3e-3)
    train_b, test_b = batches(data.train), batches(data.test)
    before = evaluate_rewards(rm, test_b)
    for _ in range(4):
        for b in train_b:
            opt.zero_grad()
            reward_loss(rm, b).backward()
            opt.step()
    after = evaluate_rewards(rm, test_b)
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.8

    torch.manual_seed(1)
    ref = GPT(cfg)
    policy = GPT(cfg)
    policy.load_state_dict(ref.state_dict())
    train_b = [reference_logps(ref, b) for b in train_b]
    test_b = [reference_logps(ref, b) for b in test_b]
    before = evaluate_dpo(policy, test_b)
    assert before["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for _ in range(3):
        for b in train_b:
            opt.zero_grad()
            dpo_batch_loss(policy, b).backward()
            opt.step()
    after = evaluate_dpo(policy, test_b)
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.8 and after["margin"] > 0


def test_chat_words_and_web_text():
    from neuraltext.data.preferences import CHAT_SPECIALS, chat_words, web_text

    assert chat_words("pourriez-vous aider ma tante ?") == ["<user>", "pourriez-vous", "aider", "ma", "tante", "?",
                                                            "<assistant>"]
    assert chat_words("a ?", "non .")[-3:] == ["non", ".", "</s>"]
    lines = web_text(200, seed=1)
    assert lines == web_text(200, seed=1) and all(w not in CHAT_SPECIALS for line in lines for w in line)
    assert all(line[0] == "pourriez-vous" for line in lines)


def test_policy_report_of_the_reference_itself():
    from neuraltext.align import policy_report

    data = preference_data(n_train=8, n_test=8, seed=0)
    vocab = Vocab.build([t.split() for t in data.texts()], specials=("<pad>", "<unk>", "<s>", "</s>", "<mask>",
                                                                      "<user>", "<assistant>"))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(vocab), max_len=48, d_model=16, n_heads=2, n_layers=1))
    row = policy_report(model, model, vocab, data.test, data.test_prompts[:2], lambda i, m: torch.ones(i.shape[0]),
                        samples_per_prompt=2, max_new_tokens=4)
    assert row["reward margin"] == 0.0 and row["KL to reference"] == 0.0 and row["reward (RM)"] == 1.0
    assert 0.0 <= row["preference accuracy"] <= 1.0 and 0.0 <= row["good answers (oracle)"] <= 1.0


def test_chat_texts_split_a_transformers_template():
    from neuraltext.align import chat_texts
    from neuraltext.weights import ModelNotAvailableError, load_tokenizer

    try:
        tok = load_tokenizer("smollm2-135m-instruct")
    except (ModelNotAvailableError, OSError) as err:
        pytest.skip(f"SmolLM2 tokenizer not available offline: {err}")
    prompt_text, answer_text = chat_texts(tok, "Could you do me a big favour?", "Of course.")
    assert prompt_text == chat_texts(tok, "Could you do me a big favour?")
    assert prompt_text.rstrip().endswith("assistant") and answer_text.startswith("Of course.")
