"""The benchmark report's reading of the training curves (synthetic records, no training)."""

from __future__ import annotations

from moe_zoo.nerf.bench_report import ratios, target_table, time_to, v1_target


def record(method: str, seed: int, psnrs: list[float], cpu_per_eval: float) -> dict:
    history = [{"step": 10 * (i + 1), "seconds": 2 * cpu_per_eval * (i + 1), "cpu_seconds": cpu_per_eval * (i + 1),
                "psnr": p} for i, p in enumerate(psnrs)]
    return {"method": method, "seed": seed, "history": history, "psnr": psnrs[-1], "ssim": 0.5, "params": 10,
            "train_s": 1.0, "train_cpu_s": 0.5, "occupancy": 1.0,
            "render_200": {"early": (2.0, 1.0), "all": (4.0, 2.0)}, "evaluated": {"early": 0.5, "all": 1.0}}


def test_target_is_what_every_v1_seed_reaches_and_time_is_the_first_crossing():
    records = [record("switch-nerf-v1", 0, [10, 15, 19], 4.0), record("switch-nerf-v1", 1, [11, 16, 18], 4.0),
               record("switch-nerf-pp", 0, [17, 18.5, 21], 1.0), record("switch-nerf-pp", 1, [18, 19, 22], 1.0)]
    assert v1_target(records) == 18
    assert time_to(records[2], 18, "cpu_seconds") == 2.0 and time_to(records[3], 18, "step") == 10
    assert time_to(records[0], 25, "seconds") is None
    table = target_table(records, [18.0, 20.0])
    assert "1.5 ± 0.7 CPU s" in table and "not reached (0/2)" in table  # v1 never reaches 20 dB
    # v1 reaches 18 dB at 12 CPU s (seed 0) and 12 CPU s (seed 1); Switch-NeRF++ at 2 and 1 CPU s
    assert "= 8.00x in CPU time" in ratios(records, 18.0)
