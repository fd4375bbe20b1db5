"""The course's one training loop and what it rests on (shared by every chapter).

* :mod:`~neuraltext.training.loop` -- :func:`train`: device, mixed precision, gradient
  accumulation and clipping, schedules, evaluation, checkpoints with exact resume;
* :mod:`~neuraltext.training.history` -- what a run records, kept on the device between synchronisations;
* :mod:`~neuraltext.training.checkpoint` -- atomic checkpoint files and random states;
* :mod:`~neuraltext.training.distributed` -- several processes with ``torchrun`` (DDP).
"""

from neuraltext.training import history, checkpoint, distributed, loop
from neuraltext.training.history import (TrainHistory, Recorder)
from neuraltext.training.checkpoint import (rng_state, set_rng_state, save_checkpoint, load_checkpoint)
from neuraltext.training.distributed import (setup, cleanup, is_distributed, rank, world_size, is_main, wrap,
                                             shard_loader, gather_objects)
from neuraltext.training.loop import (train, to_device, amp_settings, warmup_schedule)

__all__ = ["history", "checkpoint", "distributed", "loop", "TrainHistory", "Recorder", "rng_state",
           "set_rng_state", "save_checkpoint", "load_checkpoint", "setup", "cleanup", "is_distributed",
           "rank", "world_size", "is_main", "wrap", "shard_loader", "gather_objects", "train", "to_device",
           "amp_settings", "warmup_schedule"]
