"""moe-zoo core: Mixture-of-Experts building blocks and the zoo's shared infrastructure.

MoE parts: routers (:mod:`~moe_zoo.core.routing`), experts (:mod:`~moe_zoo.core.experts`),
balancing (:mod:`~moe_zoo.core.balance`), dispatch backends (:mod:`~moe_zoo.core.dispatch`),
the MoE layer (:mod:`~moe_zoo.core.layer`), transformer blocks
(:mod:`~moe_zoo.core.transformer`) and expert parallelism (:mod:`~moe_zoo.core.parallel`).
Infrastructure: registry, config, checkpoints, runtime helpers, the ``moe-zoo`` CLI.

The names below are imported on first use (PEP 562), so ``import moe_zoo.core.errors`` or the
``moe-zoo`` CLI answering a bad path does not load torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from moe_zoo.core.lazy import lazy_exports

try:
    __version__ = version("moe-zoo-core")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

# public name -> submodule of moe_zoo.core that defines it
_EXPORTS = {
    "Checkpoint": "checkpoint",
    "CheckpointCorruptError": "checkpoint",
    "CheckpointError": "checkpoint",
    "CheckpointMismatchError": "checkpoint",
    "CheckpointNotFoundError": "checkpoint",
    "Config": "config",
    "DenseToSparseRouter": "routing",
    "ExpertBank": "experts",
    "ExpertChoiceRouter": "routing",
    "FeedForward": "experts",
    "HashRouter": "routing",
    "HeterogeneousExperts": "experts",
    "InputError": "errors",
    "MoEConfig": "layer",
    "MoELayer": "layer",
    "MoEOutput": "layer",
    "MoETransformer": "transformer",
    "MoETransformerBlock": "transformer",
    "MoETransformerConfig": "transformer",
    "MoeZooError": "errors",
    "RoutingResult": "routing",
    "SharedExperts": "experts",
    "SoftGate": "routing",
    "TopKRouter": "routing",
    "TopPRouter": "routing",
    "UnknownModelError": "errors",
    "ZeroComputeExperts": "experts",
    "attach_bias_updates": "balance",
    "create_model": "registry",
    "gate_kl_to_uniform": "balance",
    "get_logger": "runtime",
    "get_model_spec": "registry",
    "limit_capacity": "routing",
    "list_models": "registry",
    "load_balancing_loss": "balance",
    "load_checkpoint": "checkpoint",
    "load_imbalance": "balance",
    "load_model": "checkpoint",
    "load_state_into": "checkpoint",
    "read_checkpoint_metadata": "checkpoint",
    "register_model": "registry",
    "resolve_device": "runtime",
    "router_z_loss": "balance",
    "save_checkpoint": "checkpoint",
    "seed_everything": "runtime",
    "setup_logging": "runtime",
}

__all__ = ["__version__", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
