"""The paper-scale UCF-Crime preset, end to end on tiny fixture files in UR-DMU's real layout."""

from __future__ import annotations

import numpy as np

from moe_zoo.core import load_model, read_checkpoint_metadata
from moe_zoo.core.cli import main
from moe_zoo.vad.presets import PRESETS

RNG = np.random.default_rng(0)


def _write_split(root, videos: dict[str, str], t: int, crops: int = 10) -> list[str]:
    """``dataset/<folder>/<video>__<crop>.npy`` [T, 1024], one line per crop (UR-DMU's lists)."""
    lines = []
    for video, folder in videos.items():
        shift = 1.5 if folder != "Normal" else 0.0         # a planted signal: anomalous videos differ
        for crop in range(crops):
            relative = f"dataset/{folder}/{video}__{crop}.npy"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / relative, (RNG.normal(size=(t, 1024)) + shift).astype(np.float32))
            lines.append(relative)
    return lines


def test_ucf_crime_preset_trains_and_evaluates_on_fixture_files(tmp_path, capsys):
    train = {"Abuse001_x264": "Abuse", "Abuse002_x264": "Abuse", "Arrest001_x264": "Arrest",
             "Arrest002_x264": "Arrest", **{f"Normal_Videos{i:03d}_x264": "Normal" for i in range(1, 5)}}
    (tmp_path / "UCF_Train.list").write_text("\n".join(_write_split(tmp_path, train, t=12)) + "\n")
    test = {"Abuse028_x264": "Abuse", "Normal_Videos_003_x264": "Normal"}
    (tmp_path / "UCF_Test.list").write_text("\n".join(_write_split(tmp_path, test, t=6)) + "\n")
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  20  35  -1  -1\nNormal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n")
    out = tmp_path / "ucf.safetensors"
    assert main(["vad", "train", "--list", str(tmp_path / "UCF_Train.list"), "--preset", "ucf-crime",
                 "--steps-scale", "0.001", "--batch-size", "2", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    model = load_model(out)
    config, preset = model.config, PRESETS["ucf-crime"]
    assert config.class_names == ("Abuse", "Arrest") and config.n_experts == 2   # one expert per class
    assert (config.d_model, config.encoder_layers, config.memory_slots, config.gate_fusion) == (512, 2, 60, True)
    assert config.feature_dim == 1024 and config.features.snippet_len == 16 and config.features.fps == 30.0
    record = read_checkpoint_metadata(out)["metadata"]
    assert record["preset"] == "ucf-crime" and record["train_config"]["n_segments"] == 200
    assert record["train_config"]["encoder_lr"] == preset["train"]["encoder_lr"] == 1e-4
    assert record["train_config"]["encoder_steps"] == 3                 # 3,000 x 0.001
    assert record["train_config"]["encoder_tgs_from"] == 0.5            # the paper's TGS on the task encoder
    assert record["train_config"]["batch_size"] == 2                    # the paper's 64, lowered for the test
    capsys.readouterr()
    assert main(["vad", "eval", "--model", str(out), "--list", str(tmp_path / "UCF_Test.list"),
                 "--annotations", str(tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")]) == 0
    printed = capsys.readouterr().out
    assert "GSMoE on" in printed and "(2 videos)" in printed and "auc" in printed
