"""moe-core tests run the Triton kernels on CPU through Triton's interpreter."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
