import pytest

from moe_zoo.driving.benchmark import main, paired_differences, render


def _record(ds: float) -> dict:
    scope = {"driving_score": ds, "success_rate": 0.0, "route_completion": ds, "collision_rate": 0.0,
             "off_road_rate": 0.0, "decisions_per_s": 10.0}
    return {"summary": {"highway": scope, "overall": scope}, "train_seconds": 1.0, "params": 3,
            "peak_memory_mb": 1.0}


def _saved(models: dict[str, float], steps: tuple[int, int]) -> dict:
    runs = {f"{m}/{s}": _record(ds + s) for m, ds in models.items() for s in (0, 1)}
    return {"runs": runs, "scale": {"stage1_steps": steps[0], "stage2_steps": steps[1], "episodes": 1}}


def test_render_marks_the_earlier_runs_rows(tmp_path):
    current = _saved({"drivemoe": 70.0, "planner": 95.0}, (600, 400))
    earlier = _saved({"drivemoe": 30.0, "driving-bc-mlp": 40.0, "planner": 90.0}, (240, 160))
    text = render(current, tmp_path / "B.md", "cmd", earlier, "earlier.json").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| drivemoe | 70.5 ± 0.7") for r in rows)
    assert any(r.startswith("| driving-bc-mlp (earlier run: 240 + 160 steps, 1 ep/scenario) | 40.5") for r in rows)
    # models the current run has are not repeated from the earlier one
    assert not any(r.startswith(("| drivemoe (earlier", "| planner (earlier")) for r in rows)
    assert "`earlier.json`" in text
    assert "earlier run" not in render(current, tmp_path / "C.md", "cmd").read_text()


def test_models_subset_is_validated():
    with pytest.raises(SystemExit):
        main(["--models", "no-such-model", "--report-only"])


def test_paired_differences_match_the_same_episodes():
    def run(scores: dict) -> dict:
        return {"episodes": [{"scenario": sc, "seed": s, "driving_score": v} for (sc, s), v in scores.items()]}

    saved = {"runs": {"drivemoe/0": run({("merge", 1): 0.8, ("exit", 2): 0.6}),
                      "drive-pi0-lite-front/0": run({("merge", 1): 0.5, ("exit", 2): 0.7, ("exit", 3): 0.0}),
                      "drivemoe/1": run({("merge", 5): 0.4}), "drive-pi0-lite-front/1": run({("merge", 5): 0.2})}}
    rows = paired_differences(saved)
    assert rows == [["drive-pi0-lite-front", "15.0 ± 7.1", "2 / 2", "13.3 ± 12.0 (3)"]]


def test_render_pairs_the_label_variant_with_the_baselines_and_names_each_rows_labels(tmp_path):
    def run(ds: float) -> dict:
        return _record(ds) | {"episodes": [{"scenario": "highway", "seed": 1, "driving_score": ds / 100}]}

    scores = {"drivemoe": 70.0, "drive-pi0-lite-all": 64.0, "drivemoe-agent-labels": 60.0,
              "drivemoe-no-action-moe": 50.0, "planner": 95.0}
    saved = {"runs": {f"{m}/0": run(ds) for m, ds in scores.items()}, "scale": {"episodes": 1},
             "renamed": "Renamed after the run."}
    text = render(saved, tmp_path / "B.md", "cmd").read_text()
    variant = text[text.index("drivemoe-agent-labels against each baseline, paired"):]
    assert variant.split("\n| drive-pi0-lite-all | ")[1].startswith("-4.0")
    assert variant.split("\n| drivemoe-no-action-moe | ")[1].startswith("10.0")
    overall = text[text.index("| model | camera labels |"):].split("\n\n")[0]
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in overall.splitlines()[2:]}
    assert rows["drivemoe"] == rows["drivemoe-no-action-moe"] == "manoeuvre (the authors')"
    assert rows["drivemoe-agent-labels"] == "agent (the package's earlier default)"
    assert rows["drive-pi0-lite-all"] == "unused" and rows["planner"] == "-"
    assert "Renamed after the run." in text
    del saved["runs"]["drivemoe-agent-labels/0"]
    text = render(saved, tmp_path / "C.md", "cmd").read_text()
    assert "drivemoe-agent-labels" not in text and "drivemoe against each baseline, paired" in text
