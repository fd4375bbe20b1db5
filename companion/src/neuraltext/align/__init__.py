"""Post-training (chapter 9): from a next-token predictor to an assistant.

RLHF's three steps (Ouyang et al. 2022) and the shortcut that replaces the last two, one module each:

* :mod:`~neuraltext.align.sft` -- supervised fine-tuning on demonstrations, the loss on the
  completion only; the summed completion log-probabilities every later step uses;
* :mod:`~neuraltext.align.reward` -- a reward model (scalar head on the last real token) trained with
  the Bradley-Terry loss ``-log sigma(r(x, y_w) - r(x, y_l))``;
* :mod:`~neuraltext.align.ppo` -- PPO against the reward model with a KL penalty to the reference:
  rollouts, k answers per prompt and a per-prompt baseline (RLOO or GRPO), the clipped objective
  ``E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)]``;
* :mod:`~neuraltext.align.dpo` -- DPO, ``-log sigma(beta log pi/pi_ref (y_w) - beta log pi/pi_ref (y_l))``;
* :mod:`~neuraltext.align.evaluate` -- the held-out comparisons of the chapter: sampled answers,
  the checker's score, rewards and KL to the reference.

The synthetic preference data are in :mod:`neuraltext.data.preferences`. Each loss is checked
against TRL's trainers in ``tests/test_align_trl.py``.
"""

from neuraltext.align import sft, reward, ppo, dpo, evaluate
from neuraltext.align.sft import (IGNORE_INDEX, sft_example, sft_batch, pack, sft_loss, logits_of,
                                  token_logps, completion_logps, pair_batch, chat_texts)
from neuraltext.align.reward import (last_token_index, pool_last, RewardModel, bradley_terry_loss,
                                     pairwise_accuracy, reward_loss, evaluate_rewards)
from neuraltext.align.ppo import (PPOConfig, clipped_surrogate, kl_penalized_reward, rloo_advantages,
                                  grpo_advantages, group_advantages, gae, eval_mode, Rollout, rollout,
                                  ppo_update, PPOHistory, train_ppo)
from neuraltext.align.dpo import (dpo_loss, reference_logps, dpo_batch_loss, evaluate_dpo)
from neuraltext.align.evaluate import (encode_pairs, encode_prompts, sample_answers, policy_report)

__all__ = ["sft", "reward", "ppo", "dpo", "evaluate", "IGNORE_INDEX", "sft_example", "sft_batch", "pack",
           "sft_loss", "logits_of", "token_logps", "completion_logps", "pair_batch", "chat_texts",
           "last_token_index", "pool_last", "RewardModel", "bradley_terry_loss", "pairwise_accuracy",
           "reward_loss", "evaluate_rewards", "PPOConfig", "clipped_surrogate", "kl_penalized_reward",
           "rloo_advantages", "grpo_advantages", "group_advantages", "gae", "eval_mode", "Rollout", "rollout", "ppo_update", "PPOHistory", "train_ppo",
           "dpo_loss", "reference_logps", "dpo_batch_loss", "evaluate_dpo", "encode_pairs", "encode_prompts",
           "sample_answers", "policy_report"]
