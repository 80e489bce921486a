"""PID and the waypoint controller."""

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.driving.control import PIDController, WaypointController


def test_pid_formula():
    pid = PIDController(2.0, 0.5, 1.0, n=4)
    assert pid.step(1.0) == pytest.approx(2.0 + 0.5 * 0.25 + 1.0 * 1.0)
    assert pid.step(3.0) == pytest.approx(6.0 + 0.5 * 1.0 + 1.0 * 2.0)


def straight(speed, dt=0.2):
    return np.stack([np.arange(1, 11) * speed * dt, np.zeros(10)], axis=1)


def test_speed_tracking_sign_and_target():
    ctrl = WaypointController()
    assert ctrl.target_speed(straight(12.0)) == pytest.approx(12.0)
    accel, steer = ctrl(straight(12.0), speed=6.0)
    assert accel > 0 and steer == pytest.approx(0.0)
    ctrl.reset()
    assert ctrl(straight(2.0), speed=10.0)[0] < 0


def test_steering_turns_toward_the_waypoints():
    ctrl = WaypointController()
    left = straight(10.0) + np.array([0.0, 1.0]) * np.linspace(0, 6, 10)[:, None]
    # highway-env steering: positive turns right, so a path to the left gives negative steering
    assert ctrl(left, 10.0)[1] < 0
    ctrl.reset()
    assert ctrl(left * np.array([1.0, -1.0]), 10.0)[1] > 0


def test_pid_drives_a_kinematic_car_onto_the_waypoints():
    from highway_env.road.lane import StraightLane
    from highway_env.road.road import Road, RoadNetwork
    from highway_env.vehicle.kinematics import Vehicle

    from moe_zoo.driving.planner import to_ego

    net = RoadNetwork()
    net.add_lane("a", "b", StraightLane([0, 0], [1000, 0]))
    car = Vehicle(Road(net), [0.0, 3.0], heading=0.0, speed=8.0)   # 3 m right of the line y = 0
    ctrl = WaypointController()
    for _ in range(60):
        ahead = np.stack([car.position[0] + np.arange(1, 11) * 2.0, np.zeros(10)], axis=1)
        accel, steer = ctrl(to_ego(ahead, car.position, car.heading), car.speed)
        car.act({"acceleration": accel, "steering": steer})
        for _ in range(2):
            car.step(0.1)
    assert abs(car.position[1]) < 0.5 and car.speed == pytest.approx(10.0, abs=1.0)


def test_bad_waypoints():
    with pytest.raises(InputError):
        WaypointController()(np.full((10, 2), np.nan), 1.0)
