"""The CPU-testable parts of ``make gpu-check``: argument parsing, the refusal without CUDA, the
report writer, the JUnit summary, and the section runner's time limits and failure capture."""

import json
import sys
import time

import pytest
import torch

from moe_zoo.core.gpu_check import runner
from moe_zoo.core.gpu_check.junit import summarise_junit
from moe_zoo.core.gpu_check.report import SectionResult, render_markdown, write_report


def test_arguments_have_bounded_defaults_and_reject_bad_numbers(capsys):
    args = runner.parse_args([])
    assert args.budget + 30 <= 8 * 60      # the whole run, start-up included, under the 8 minutes
    assert args.only is None and args.repeats == 20
    assert runner.parse_args(["--only", "bench", "train:vad", "--budget", "60"]).only == ["bench", "train:vad"]
    for bad in (["--budget", "0"], ["--budget", "nan"], ["--budget", "-5"], ["--repeats", "0"],
                ["--repeats", "2.5"], ["--only", "train:no-such-package"]):
        with pytest.raises(SystemExit) as exc:
            runner.parse_args(bad)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {bad[0]}" in err and ("expected" in err or "invalid choice" in err), err


def test_sections_together_fit_their_declared_order():
    assert runner.SECTIONS[:3] == ("env", "tests", "bench")
    assert {s.partition(":")[2] for s in runner.SECTIONS[3:]} == set(runner.DOMAIN_PACKAGES)


def test_refuses_without_cuda_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.main(["--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == runner.REFUSAL and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_report_writer_round_trips_json_and_renders_tables_and_errors(tmp_path):
    table = {"header": ["implementation", "fwd ms"], "rows": [["dense", "1.00"], ["moe-core triton", "0.90"]]}
    results = [SectionResult("bench", "ok", 12.5, {"tables": {"T=4096": table}, "dtype": "torch.bfloat16"}),
               SectionResult("train:vad", "timeout", 60.0, {}, "cut after 60 s\nlast line")]
    md = write_report(tmp_path / "out", results, {"gpu": "Fake GPU"})
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["meta"] == {"gpu": "Fake GPU"}
    assert [s["status"] for s in document["sections"]] == ["ok", "timeout"]
    assert document["sections"][0]["data"]["tables"]["T=4096"] == table
    text = md.read_text()
    assert text == render_markdown(results, {"gpu": "Fake GPU"})
    assert "| moe-core triton | 0.90 |" in text and "| train:vad | timeout | 60.0 |" in text
    assert "cut after 60 s\nlast line" in text and '"dtype": "torch.bfloat16"' in text
    with pytest.raises(ValueError, match="status"):
        SectionResult("x", "fine")


def test_junit_summary_counts_outcomes(tmp_path):
    xml = tmp_path / "tests.xml"
    xml.write_text('<testsuites><testsuite><testcase classname="t" name="a" time="0.5"/>'
                   '<testcase classname="t" name="b" time="1"><failure message="boom"/></testcase>'
                   '<testcase classname="t" name="c"><skipped message="no"/></testcase>'
                   '<testcase classname="t" name="d"><error message="oops"/></testcase></testsuite></testsuites>')
    summary = summarise_junit(xml)
    assert {k: summary[k] for k in ("passed", "failed", "skipped", "errors")} == \
        {"passed": 1, "failed": 1, "skipped": 1, "errors": 1}
    assert summary["failures"] == [{"test": "t::b", "message": "boom"}, {"test": "t::d", "message": "oops"}]
    assert summary["tables"]["tests"]["rows"][0] == ["t::a", "passed", "0.50"]
    assert "unreadable_junit" in summarise_junit(tmp_path / "missing.xml")


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_section_records_data_failures_and_timeouts(tmp_path):
    data = tmp_path / "s.json"
    ok = runner.run_section(runner.Section("ok", _python(f"open({str(data)!r}, 'w').write('{{\"x\": 1}}')"), 30), data)
    assert (ok.status, ok.data, ok.error) == ("ok", {"x": 1}, None)
    data.unlink()
    failed = runner.run_section(runner.Section("bad", _python("raise RuntimeError('kernel exploded')"), 30), data)
    assert failed.status == "failed" and "RuntimeError: kernel exploded" in failed.error and failed.data == {}
    # a section that hangs, with a child of its own, is cut at its limit (the whole process group)
    started = time.perf_counter()
    hung = runner.run_section(runner.Section("hang", _python(
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"), 2), data)
    assert hung.status == "timeout" and "started" in hung.error and time.perf_counter() - started < 15


def test_run_all_writes_a_partial_report_after_each_section_and_keeps_the_budget(tmp_path, monkeypatch):
    commands = {"env": _python("pass"), "tests": _python("import time; time.sleep(30)"),
                "bench": _python("raise SystemExit(3)")}
    monkeypatch.setattr(runner, "section_command", lambda name, path, args: commands.get(name))
    monkeypatch.setitem(runner.TIMEOUTS, "tests", 1.5)
    args = runner.parse_args(["--out", str(tmp_path), "--budget", "8", "--only", "env", "tests", "bench", "train:vad"])
    results = runner.run_all(args, {"gpu": "test"})
    assert [(r.name, r.status) for r in results] == [("env", "ok"), ("tests", "timeout"), ("bench", "failed"),
                                                     ("train:vad", "skipped")]
    document = json.loads((tmp_path / "report.json").read_text())
    assert [s["name"] for s in document["sections"]] == ["env", "tests", "bench", "train:vad"]
    assert "exit code 3" in results[2].error


def test_an_ok_test_section_where_nothing_passed_is_a_failure(tmp_path, monkeypatch):
    xml = '<testsuites><testsuite><testcase classname="t" name="a"><skipped message="no cuda"/></testcase></testsuite></testsuites>'
    monkeypatch.setattr(runner, "section_command", lambda name, path, args: _python(
        f"open({str(path.with_suffix('.xml'))!r}, 'w').write({xml!r})"))
    [result] = runner.run_all(runner.parse_args(["--out", str(tmp_path), "--only", "tests"]), {})
    assert result.status == "failed" and result.data["skipped"] == 1


def test_benchmark_section_runs_every_implementation_on_a_tiny_shape_on_cpu():
    """The bench section's code path (Triton under the interpreter, bf16, HF blocks), where CI can run it:
    every implementation is timed and agrees with moe-core eager within bf16 rounding."""
    from moe_zoo.core.benchmark import Shape
    from moe_zoo.core.gpu_check.gpu_bench import run_benchmark

    published = []
    run_benchmark(1, published.append, (Shape(16, 16, 16, 4, 2),), device="cpu", warmup=0)
    [data] = published
    [(label, result)] = data["shapes"].items()
    names = list(result)
    assert names[0].startswith("dense") and "moe-core triton" in names and "moe-core eager" in names
    assert any(n.startswith("HF MixtralSparseMoeBlock grouped_mm") for n in names)
    for name in names[1:]:
        assert result[name]["max_abs_diff"] < 0.05, name
        assert result[name]["fwd"] > 0 and result[name]["fwd+bwd"] > 0
    assert [row[0] for row in data["tables"][label]["rows"]] == names
