"""Cross-package tests: install, CLI, registry, wheels, README examples."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
