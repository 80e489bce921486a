"""``DrivingPolicy``: a trained model as a closed-loop controller, ``act(observation) -> action``.

Works inside any gymnasium loop over :class:`~moe_zoo.driving.env.DrivingEnv` observations::

    policy = driving.load()                      # shipped DriveMoE weights
    obs, _ = env.reset(seed=0); policy.reset()
    obs, *_ = env.step(policy.act(obs))

Per decision (DriveMoE): the front view is encoded by the frozen MobileNetV2, the camera router
picks one of the five other views (argmax), only that view is encoded, the context is built
(the front features of the previous decision are kept), 10 Euler steps of the flow give 10
waypoints, and the PID controller turns them into ``[acceleration, steering]`` in ``[-1, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

from moe_zoo.core import InputError
from moe_zoo.driving.cameras import CAMERAS
from moe_zoo.driving.control import WaypointController
from moe_zoo.driving.env import normalise_action
from moe_zoo.driving.features import encode_views
from moe_zoo.driving.model import BCMLP, N_ROUTED, DriveMoE


def check_observation(observation: dict) -> np.ndarray:
    """The camera array of an observation, validated (six uint8 RGB views)."""
    if not isinstance(observation, dict) or "cameras" not in observation:
        raise InputError("act: expected a DrivingEnv observation dict with 'cameras', 'history', 'command', "
                         "'command_point'")
    cams = np.asarray(observation["cameras"])
    if cams.ndim != 4 or cams.shape[0] != len(CAMERAS) or cams.shape[-1] != 3:
        raise InputError(f"act: expected {len(CAMERAS)} camera views [{len(CAMERAS)}, H, W, 3] "
                         f"({', '.join(CAMERAS)}), got shape {cams.shape}")
    for key in ("history", "command_point"):
        if key not in observation or not np.isfinite(np.asarray(observation[key], dtype=float)).all():
            raise InputError(f"act: observation[{key!r}] is missing or not finite")
    return cams


class DrivingPolicy:
    """Closed-loop wrapper of a DriveMoE variant or the BC-MLP; ``last`` holds the decision's details."""

    def __init__(self, model: torch.nn.Module, *, euler_steps: int = 10, seed: int = 0, device: str = "cpu") -> None:
        if not isinstance(model, (DriveMoE, BCMLP)):
            raise InputError(f"DrivingPolicy: expected a DriveMoE or BCMLP model, got {type(model).__name__}")
        self.model = model.eval().to(device)
        self.euler_steps, self.seed, self.device = euler_steps, seed, device
        self.controller = WaypointController()
        self.reset()

    def reset(self) -> None:
        self.prev_front: torch.Tensor | None = None
        self.generator = torch.Generator().manual_seed(self.seed)
        self.controller.reset()
        self.last: dict = {}

    def _tensor(self, observation: dict, key: str, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(observation[key]), dtype=dtype)[None]

    @torch.inference_mode()
    def waypoints(self, observation: dict) -> np.ndarray:
        """``[10, 2]`` predicted waypoints (ego frame, m) for one observation."""
        cams = check_observation(observation)
        batch = {"history": self._tensor(observation, "history"), "command_point": self._tensor(observation, "command_point"),
                 "command": self._tensor(observation, "command", torch.long)}
        model = self.model
        if isinstance(model, BCMLP):
            batch["kinematics"] = self._tensor(observation, "kinematics")
            self.last = {"camera": None, "skill": None}
            return model.denormalise_waypoints(model(batch))[0].numpy()
        cfg = model.config
        front = model.reduce(encode_views(cams[:1], self.device))        # [1, P, pca_dim]
        prev = self.prev_front if self.prev_front is not None else front
        self.prev_front = front
        others = choice = None
        camera = None
        if cfg.cameras == "moe":
            logits = model.route_cameras(model.camera_tokens(front, 0), batch["command_point"])
            camera = int(logits.argmax(-1))
            others = torch.zeros(1, N_ROUTED, *front.shape[1:])
            others[0, camera] = model.reduce(encode_views(cams[1 + camera:2 + camera], self.device))[0]
            choice = torch.nn.functional.one_hot(torch.tensor([camera]), N_ROUTED).float()
        elif cfg.cameras == "all":
            others = model.reduce(encode_views(cams[1:], self.device))[None]
        context = model.encode_context(front, prev, others, choice, batch["command"], batch["command_point"],
                                       batch["history"])
        x, probs = model.sample(context, self.euler_steps, self.generator)
        self.last = {"camera": camera, "skill": int(probs.argmax(-1)) if probs is not None else None}
        return model.denormalise_waypoints(x)[0].numpy()

    def act(self, observation: dict) -> np.ndarray:
        """``[acceleration, steering]`` in ``[-1, 1]`` for a :class:`DrivingEnv` observation."""
        wp = self.waypoints(observation)
        speed = float(np.asarray(observation["history"])[0, 4])
        accel, steer = self.controller(wp, speed)
        self.last["waypoints"] = wp
        return normalise_action(accel, steer)
