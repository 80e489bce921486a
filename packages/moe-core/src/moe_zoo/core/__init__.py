"""moe-zoo core: Mixture-of-Experts building blocks and the zoo's shared infrastructure.

MoE parts: routers (:mod:`~moe_zoo.core.routing`), experts (:mod:`~moe_zoo.core.experts`),
balancing (:mod:`~moe_zoo.core.balance`), dispatch backends (:mod:`~moe_zoo.core.dispatch`),
the MoE layer (:mod:`~moe_zoo.core.layer`), transformer blocks
(:mod:`~moe_zoo.core.transformer`) and expert parallelism (:mod:`~moe_zoo.core.parallel`).
Infrastructure: registry, config, checkpoints, runtime helpers, the ``moe-zoo`` CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moe-zoo-core")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from moe_zoo.core.balance import (
    attach_bias_updates,
    gate_kl_to_uniform,
    load_balancing_loss,
    load_imbalance,
    router_z_loss,
)
from moe_zoo.core.checkpoint import (
    Checkpoint,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    load_checkpoint,
    load_model,
    load_state_into,
    read_checkpoint_metadata,
    save_checkpoint,
)
from moe_zoo.core.config import Config
from moe_zoo.core.errors import InputError, MoeZooError, UnknownModelError
from moe_zoo.core.experts import (
    ExpertBank,
    FeedForward,
    HeterogeneousExperts,
    SharedExperts,
    ZeroComputeExperts,
)
from moe_zoo.core.layer import MoEConfig, MoELayer, MoEOutput
from moe_zoo.core.registry import create_model, get_model_spec, list_models, register_model
from moe_zoo.core.routing import (
    DenseToSparseRouter,
    ExpertChoiceRouter,
    HashRouter,
    RoutingResult,
    SoftGate,
    TopKRouter,
    TopPRouter,
    limit_capacity,
)
from moe_zoo.core.runtime import get_logger, resolve_device, seed_everything, setup_logging
from moe_zoo.core.transformer import MoETransformer, MoETransformerBlock, MoETransformerConfig

__all__ = [
    "Checkpoint", "CheckpointCorruptError", "CheckpointError", "CheckpointMismatchError",
    "CheckpointNotFoundError", "Config", "DenseToSparseRouter", "ExpertBank", "ExpertChoiceRouter",
    "FeedForward", "HashRouter", "HeterogeneousExperts", "InputError", "MoEConfig", "MoELayer", "MoEOutput",
    "MoETransformer", "MoETransformerBlock", "MoETransformerConfig", "MoeZooError", "RoutingResult",
    "SharedExperts", "SoftGate", "TopKRouter", "TopPRouter", "UnknownModelError", "ZeroComputeExperts",
    "__version__", "attach_bias_updates", "create_model", "gate_kl_to_uniform", "get_logger", "get_model_spec",
    "limit_capacity", "list_models", "load_balancing_loss", "load_checkpoint", "load_imbalance", "load_model",
    "load_state_into",
    "read_checkpoint_metadata", "register_model", "resolve_device", "router_z_loss", "save_checkpoint",
    "seed_everything", "setup_logging",
]
