"""Readers of the real benchmark layouts, on fixture files written in exactly those layouts."""

from __future__ import annotations

import numpy as np
import pytest

from moe_zoo.core import InputError
from moe_zoo.vad.data import (
    NORMAL,
    expand_to_frames,
    load_features_list,
    pool_segments,
    read_list,
    read_ucf_annotations,
    read_xd_annotations,
    ucf_class,
    xd_classes,
)

RNG = np.random.default_rng(0)


def _save(path, shape):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = RNG.normal(size=shape).astype(np.float32)
    np.save(path, array)
    return array


def test_rtfm_ucf_layout_ten_crop_with_concatenated_gt(tmp_path):
    """RTFM's UCF-Crime I3D: ``<video>_i3d.npy`` [T, 10, 2048], ``ucf-i3d-test.list`` of absolute
    paths of the authors' machine, ``gt-ucf.npy`` = 16 T frame labels per video in list order."""
    folder = tmp_path / "UCF_Test_ten_crop_i3d"
    a = _save(folder / "Abuse028_x264_i3d.npy", (5, 10, 2048))
    n = _save(folder / "Normal_Videos_003_x264_i3d.npy", (3, 10, 2048))
    (tmp_path / "ucf-i3d-test.list").write_text(
        "/home/yu/data/UCF_Test_ten_crop_i3d/Abuse028_x264_i3d.npy\n"
        "/home/yu/data/UCF_Test_ten_crop_i3d/Normal_Videos_003_x264_i3d.npy\n")
    gt = np.zeros(16 * 8)
    gt[20:50] = 1
    np.save(tmp_path / "gt-ucf.npy", gt)
    data = load_features_list(tmp_path / "ucf-i3d-test.list", root=tmp_path, gt=tmp_path / "gt-ucf.npy")
    assert [v.name for v in data] == ["Abuse028_x264", "Normal_Videos_003_x264"]
    assert [v.label for v in data] == [1, 0]
    assert data.videos[0].classes == ("Abuse",) and data.videos[1].classes == (NORMAL,)
    np.testing.assert_array_equal(data.videos[0].load(), a)
    np.testing.assert_array_equal(data.videos[1].load(), n)
    assert len(data.videos[0].frame_labels) == 80 and len(data.videos[1].frame_labels) == 48
    np.testing.assert_array_equal(np.flatnonzero(data.videos[0].frame_labels), np.arange(20, 50))
    assert data.videos[1].frame_labels.sum() == 0
    # without the re-rooting the authors' absolute paths give a clear error naming the file
    with pytest.raises(InputError, match="feature file not found"):
        load_features_list(tmp_path / "ucf-i3d-test.list").videos[0].load()


def test_urdmu_ucf_layout_crop_files_and_temporal_annotation(tmp_path):
    """UR-DMU's UCF-Crime: ``dataset/<Class>/<video>__<crop>.npy`` [T, 1024] (10 crops listed one
    per line), labels from ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``."""
    lines, crops = [], []
    for video, folder, t in (("Abuse028_x264", "Abuse", 6), ("Normal_Videos_003_x264", "Testing_Normal_Videos_Anomaly", 4)):
        parts = []
        for crop in range(10):
            relative = f"dataset/{folder}/{video}__{crop}.npy"
            parts.append(_save(tmp_path / relative, (t, 1024)))
            lines.append(relative)
        crops.append(np.stack(parts, axis=1))
    (tmp_path / "UCF_Test.list").write_text("\n".join(lines) + "\n")
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  20  35  60  70\nNormal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n")
    table = read_ucf_annotations(tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    assert table == {"Abuse028_x264": ("Abuse", [(20, 35), (60, 70)]), "Normal_Videos_003_x264": ("Normal", [])}
    data = load_features_list(tmp_path / "UCF_Test.list",
                              annotations=tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    assert len(data) == 2 and [len(v.paths) for v in data] == [10, 10]
    np.testing.assert_array_equal(data.videos[0].load(), crops[0])      # [T, 10, 1024]
    assert data.videos[0].load().shape == (6, 10, 1024)
    labels = data.videos[0].frame_labels
    assert len(labels) == 96                                            # 16 frames per snippet
    np.testing.assert_array_equal(np.flatnonzero(labels), np.r_[20:36, 60:71])   # inclusive ends
    assert data.videos[1].frame_labels.sum() == 0 and len(data.videos[1].frame_labels) == 64


def test_xd_layout_five_crops_multilabel_and_annotation(tmp_path):
    """XD-Violence (UR-DMU/RTFM): ``<video>__<crop>.npy`` [T, 1024], 5 crops, classes in the name,
    ``XD_Annotation.txt`` with pairs of frame numbers."""
    names = ["Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6", "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A"]
    lines = []
    for name in names:
        for crop in range(5):
            _save(tmp_path / "RGBTest" / f"{name}__{crop}.npy", (4, 1024))
            lines.append(f"RGBTest/{name}__{crop}.npy")
    (tmp_path / "XD_Test.list").write_text("\n".join(lines) + "\n")
    (tmp_path / "XD_Annotation.txt").write_text(f"{names[0]} 3 10 40 50\n")
    assert read_xd_annotations(tmp_path / "XD_Annotation.txt") == {names[0]: [(3, 10), (40, 50)]}
    data = load_features_list(tmp_path / "XD_Test.list", dataset="xd", annotations=tmp_path / "XD_Annotation.txt")
    assert data.videos[0].classes == ("Explosion", "Shooting", "Car accident") and data.videos[0].label == 1
    assert data.videos[1].classes == (NORMAL,) and data.videos[1].label == 0
    assert data.videos[0].load().shape == (4, 5, 1024)
    np.testing.assert_array_equal(np.flatnonzero(data.videos[0].frame_labels), np.r_[3:11, 40:51])
    assert set(data.anomaly_classes) == {"Explosion", "Shooting", "Car accident"}


def test_class_names_from_file_names():
    assert ucf_class("RoadAccidents001_x264") == "RoadAccidents"
    assert ucf_class("Normal_Videos_923_x264") == NORMAL
    assert xd_classes("v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0") == ("Explosion",)
    assert xd_classes("Casino.Royale.2006__#00-50-05_00-51-16_label_B1-B2-B6") == ("Fighting", "Shooting", "Car accident")
    with pytest.raises(InputError, match="unknown label codes"):
        xd_classes("x_label_Z9")


def test_bad_files_give_clear_errors(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((3, 8), np.nan, dtype=np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(8, dtype=np.float32))
    (tmp_path / "a.list").write_text("nan.npy\nflat.npy\n")
    videos = load_features_list(tmp_path / "a.list").videos
    with pytest.raises(InputError, match="NaN"):
        videos[0].load()
    with pytest.raises(InputError, match="expected snippet features"):
        videos[1].load()
    (tmp_path / "b.list").write_text("clip.mp4\n")
    with pytest.raises(InputError, match=r"expected a \.npy path"):
        read_list(tmp_path / "b.list")
    with pytest.raises(InputError, match="list file not found"):
        read_list(tmp_path / "missing.list")
    np.save(tmp_path / "ok.npy", np.zeros((3, 8), dtype=np.float32))
    (tmp_path / "c.list").write_text("ok.npy\n")
    np.save(tmp_path / "gt.npy", np.zeros(47))
    with pytest.raises(InputError, match="has 47 frames but the listed videos need 48"):
        load_features_list(tmp_path / "c.list", gt=tmp_path / "gt.npy")


def test_pool_segments_is_the_urdmu_resampling():
    x = np.arange(10, dtype=np.float32)[:, None]
    pooled = pool_segments(x, 4)                       # bins linspace(0, 10, 5) -> 0,2,5,7,10
    np.testing.assert_allclose(pooled[:, 0], [0.5, 3.0, 5.5, 8.0])
    short = pool_segments(x[:3], 5)                    # empty bins take their snippet
    assert short.shape == (5, 1) and set(short[:, 0]) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(expand_to_frames(np.array([0.1, 0.9]), 3, 7),
                                  np.array([0.1] * 3 + [0.9] * 4, dtype=np.float32))
