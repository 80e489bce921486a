"""Reporting helpers shared by the benchmark scripts."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from moe_zoo.core.reporting import (
    format_mean_std,
    hardware_summary,
    markdown_table,
    mean_std,
    recorded_hardware,
    save_figure,
    write_benchmarks_md,
    write_text_atomic,
)


def test_mean_std_and_formatting():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert format_mean_std([0.5, 0.7], digits=2) == "0.60 ± 0.14"
    assert markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"


def test_save_figure_writes_the_file_atomically_and_closes_the_figure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "plot.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["plot.png"]       # no temp file left
    assert not plt.fignum_exists(fig.number)


def test_save_figure_leaves_nothing_behind_on_failure(tmp_path):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "plot.unknownformat")
    assert list(tmp_path.iterdir()) == []
    assert not plt.fignum_exists(fig.number)


def test_write_text_atomic(tmp_path):
    path = write_text_atomic(tmp_path / "a" / "b.md", "hello")
    assert path.read_text() == "hello" and len(list(path.parent.iterdir())) == 1


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    import os

    from torch import nn

    from moe_zoo.core import save_checkpoint

    umask = os.umask(0o022)
    try:
        text = write_text_atomic(tmp_path / "a.md", "x")
        ckpt = save_checkpoint(tmp_path / "m.safetensors", nn.Linear(2, 2))
    finally:
        os.umask(umask)
    assert (text.stat().st_mode & 0o777) == 0o644
    assert (ckpt.stat().st_mode & 0o777) == 0o644


def test_replace_marked_block(tmp_path):
    from moe_zoo.core.reporting import replace_marked_block

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- a -->\nold\n<!-- b -->\nend\n")
    assert replace_marked_block(readme, "<!-- a -->", "<!-- b -->", "new\ntable")
    assert readme.read_text() == "intro\n<!-- a -->\nnew\ntable\n<!-- b -->\nend\n"
    readme.write_text("no markers\n")
    assert not replace_marked_block(readme, "<!-- a -->", "<!-- b -->", "x")
    assert readme.read_text() == "no markers\n"


def test_a_report_rerendered_from_records_names_the_machine_that_measured_them(tmp_path):
    path = write_benchmarks_md(tmp_path / "B.md", "t", command="c", sections=[("s", "body")],
                               hardware=recorded_hardware({"hardware": "the benchmark box"}))
    assert "Hardware: the benchmark box\n" in path.read_text()
    write_benchmarks_md(path, "t", command="c", sections=[])
    assert f"Hardware: {hardware_summary()}\n" in path.read_text()
    with pytest.warns(UserWarning, match="which machine"):
        assert recorded_hardware({}) is None
