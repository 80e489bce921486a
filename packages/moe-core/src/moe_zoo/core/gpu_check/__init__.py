"""``make gpu-check``: one prepared command that checks moe-core on a CUDA machine.

It runs, each section in its own child process with its own time limit (so a hang or a CUDA
crash in one section cannot take the report down): the environment record, moe-core's CUDA
tests (Triton kernels and every dispatch backend against the eager reference in fp32 and bf16,
forward and backward, the MoE layer and HF's MoE blocks on the GPU), the benchmark's shapes in
bf16 against the dense FFN and HF's MoE blocks in one process, and a few training steps of each
installed domain package's default model through its ``device=`` path. After every section the
report folder (``report.md`` + ``report.json``) is rewritten, so a partial report always exists.
Without CUDA it refuses with one line and exit code 2. It installs nothing.
"""

from moe_zoo.core.gpu_check.runner import main

__all__ = ["main"]
