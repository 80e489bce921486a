"""Tests run on one torch thread: on a shared 2-core machine that is faster and deterministic."""

import torch

torch.set_num_threads(1)
