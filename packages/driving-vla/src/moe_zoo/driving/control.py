"""Waypoints -> (acceleration, steering): TCP-style PID controllers (as Bench2Drive agents use).

Waypoints are ego-frame ``(x ahead, y left)`` positions at ``dt, 2 dt, ..., 10 dt`` (``dt`` = one
policy step, 0.2 s). Speed target: mean step length of the first 5 waypoints over ``dt``;
acceleration ``= PID_speed(target - speed)``. Heading: the aim point is the first waypoint at
least ``aim_distance`` m away (else the last); ``alpha = atan2(y, x)``;
steering (highway-env sign: positive turns right) ``= -PID_turn(alpha)``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from moe_zoo.core import InputError


class PIDController:
    """``u = K_P e + K_I mean(e over the last n steps) + K_D (e - e_prev)`` (TCP's PID)."""

    def __init__(self, kp: float, ki: float, kd: float, n: int = 20) -> None:
        self.kp, self.ki, self.kd = kp, ki, kd
        self.window: deque[float] = deque([0.0] * n, maxlen=n)

    def reset(self) -> None:
        self.window.extend([0.0] * self.window.maxlen)

    def step(self, error: float) -> float:
        self.window.append(float(error))
        integral = float(np.mean(self.window))
        derivative = self.window[-1] - self.window[-2]
        return self.kp * error + self.ki * integral + self.kd * derivative


@dataclass
class WaypointController:
    """Turns predicted waypoints into a physical (acceleration m/s^2, steering rad) command."""

    dt: float = 0.2
    aim_distance: float = 5.0
    accel_range: tuple[float, float] = (-6.0, 4.0)
    max_steer: float = np.pi / 4

    def __post_init__(self) -> None:
        self.turn = PIDController(1.25, 0.2, 0.3, n=10)
        self.speed = PIDController(1.5, 0.2, 0.2, n=10)

    def reset(self) -> None:
        self.turn.reset()
        self.speed.reset()

    def target_speed(self, waypoints: np.ndarray) -> float:
        path = np.concatenate([np.zeros((1, 2)), waypoints[:5]])
        return float(np.linalg.norm(np.diff(path, axis=0), axis=1).mean() / self.dt)

    def __call__(self, waypoints: np.ndarray, speed: float) -> tuple[float, float]:
        wp = np.asarray(waypoints, dtype=float)
        if wp.ndim != 2 or wp.shape[1] != 2 or not np.isfinite(wp).all():
            raise InputError(f"WaypointController: expected finite waypoints [W, 2], got shape {wp.shape}")
        accel = float(np.clip(self.speed.step(self.target_speed(wp) - speed), *self.accel_range))
        far = np.flatnonzero(np.linalg.norm(wp, axis=1) >= self.aim_distance)
        aim = wp[far[0]] if len(far) else wp[-1]
        alpha = float(np.arctan2(aim[1], aim[0])) if np.linalg.norm(aim) > 0.5 else 0.0
        steer = float(np.clip(-self.turn.step(alpha), -self.max_steer, self.max_steer))
        return accel, steer
