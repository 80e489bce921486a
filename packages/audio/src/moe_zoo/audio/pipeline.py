"""End to end: built-in data -> codec fitted on the training audio -> token pools -> trained model."""

from __future__ import annotations

from moe_zoo.audio.batching import Example, encode_clips
from moe_zoo.audio.codec import MelRVQCodec
from moe_zoo.audio.data import Clip
from moe_zoo.audio.model import UniMoEAudio, UniMoEAudioConfig
from moe_zoo.audio.train import TASKS, TrainConfig, fit
from moe_zoo.core import InputError
from moe_zoo.core.runtime import get_logger

_log = get_logger(__name__)


def fit_codec(config: UniMoEAudioConfig, clips: list[Clip], seed: int = 0) -> MelRVQCodec:
    return MelRVQCodec(config.codec).fit([c.audio for c in clips], seed=seed)


def make_pools(model_or_config, clips: list[Clip], codec: MelRVQCodec) -> dict[str, list[Example]]:
    shell = model_or_config if isinstance(model_or_config, UniMoEAudio) else UniMoEAudio(model_or_config)
    examples = encode_clips(shell, clips, codec)
    pools = {t: [e for e in examples if e.task == t] for t in TASKS}
    empty = [t for t, p in pools.items() if not p]
    if empty:
        raise InputError(f"training needs clips of every task; none for {empty}")
    return pools


def train_model(clips: list[Clip], config: UniMoEAudioConfig, train: TrainConfig,
                codec: MelRVQCodec | None = None) -> tuple[UniMoEAudio, dict]:
    """Fit the codec (unless given), tokenise, and train with ``train.recipe``."""
    codec = codec or fit_codec(config, clips, seed=train.seed)
    pools = make_pools(config, clips, codec)
    _log.info("training %s/%s (%s): %s", config.ffn, config.router, train.recipe, {t: len(p) for t, p in pools.items()})
    return fit(pools, config, train, codec_state=codec.state_dict())


def registry_name(config: UniMoEAudioConfig) -> str:
    return "unimoe-audio-dense" if config.ffn == "dense" else (
        "unimoe-audio-topk" if config.router == "topk" else "unimoe-audio-tiny")


def train(clips: list[Clip] | None = None, *, config: UniMoEAudioConfig | None = None,
          train_config: TrainConfig | None = None, out: str | None = None, seed: int = 0,
          metadata: dict | None = None) -> UniMoEAudio:
    """Train on ``clips`` (default: the built-in training split) with the curriculum (default) or
    naive joint recipe; with ``out``, save a safetensors checkpoint (atomically)."""
    from moe_zoo.audio.data import clip_summary, load_builtin
    from moe_zoo.core import save_checkpoint

    clips = clips if clips is not None else load_builtin("train")
    config = config or UniMoEAudioConfig()
    train_config = train_config or TrainConfig(seed=seed)
    model, log = train_model(clips, config, train_config)
    if out:
        save_checkpoint(out, model, {"train": train_config.to_dict(), "data": clip_summary(clips),
                                     "seconds": log["seconds"], **(metadata or {})},
                        model_name=registry_name(config), config=config)
    return model
