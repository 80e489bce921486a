"""Training samples: episode files -> one in-memory feature set (cached backbone features + labels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from moe_zoo.core import InputError
from moe_zoo.driving.episodes import list_episodes, read_episode
from moe_zoo.driving.features import episode_features

KEYS = ("history", "command", "command_point", "kinematics", "waypoints", "skill", "camera")


@dataclass
class FeatureSet:
    """All steps of a set of episodes. ``features [N, 6, P, 1280]`` float16 (frozen MobileNetV2),
    ``prev [N]`` the row of the same episode's previous step (itself at an episode's start),
    ``episode [N]`` episode ids, and the arrays of :data:`KEYS`; ``scenarios`` per episode."""

    features: Tensor
    prev: Tensor
    episode: Tensor
    arrays: dict[str, Tensor]
    scenarios: list[str]
    commands: list[str]

    def __len__(self) -> int:
        return len(self.prev)

    def batch(self, index: Tensor) -> dict[str, Tensor]:
        out = {k: v[index] for k, v in self.arrays.items()}
        out["features"] = self.features[index].float()
        out["front_prev"] = self.features[self.prev[index], 0].float()
        return out

    def with_features(self, transform, chunk: int = 512) -> FeatureSet:
        """The same samples with ``transform`` applied to the features (e.g. the model's PCA)."""
        out = torch.cat([transform(self.features[i:i + chunk]) for i in range(0, len(self), chunk)])
        return FeatureSet(out, self.prev, self.episode, self.arrays, self.scenarios, self.commands)


def load_feature_set(source: str | Path | list[Path], progress: bool = True, with_features: bool = True) -> FeatureSet:
    """Read episodes (a folder of ``.npz`` or a list of files) and their cached camera features."""
    files = list_episodes(source) if isinstance(source, (str, Path)) else [Path(p) for p in source]
    if not files:
        raise InputError("load_feature_set: no episode files given")
    feats, prevs, ids, cols, scenarios, commands = [], [], [], {k: [] for k in KEYS}, [], None
    offset = 0
    for i, path in enumerate(tqdm(files, desc="features", disable=not progress)):
        ep = read_episode(path)
        if commands is None:
            commands = ep.meta.get("commands", [])
        elif ep.meta.get("commands", commands) != commands:
            raise InputError(f"{path}: its command list differs from the other episodes'")
        n = len(ep)
        feats.append(episode_features(path, ep.cameras) if with_features
                     else np.zeros((n, 6, 1, 1), np.float16))
        prevs.append(offset + np.maximum(np.arange(n) - 1, 0))
        ids.append(np.full(n, i))
        for k in KEYS:
            cols[k].append(getattr(ep, k))
        scenarios.append(ep.meta.get("scenario", "unknown"))
        offset += n
    arrays = {k: torch.from_numpy(np.concatenate(v)) for k, v in cols.items()}
    for k in ("command", "skill", "camera"):
        arrays[k] = arrays[k].long()
    return FeatureSet(torch.from_numpy(np.concatenate(feats)), torch.from_numpy(np.concatenate(prevs)).long(),
                      torch.from_numpy(np.concatenate(ids)).long(), arrays, scenarios, list(commands or []))
