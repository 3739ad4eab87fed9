"""``python -m prefix_models.report``: the PNG, the best-epoch table, finding a run's state, the errors."""

from __future__ import annotations

import json
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from conftest import FIXTURES

from prefix_models import report

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (epoch, training loss) logged twice an epoch, and per epoch eval metrics with the Trainer's bookkeeping.
LOSSES = [(0.5, 0.71), (1.0, 0.66), (1.5, 0.61), (2.0, 0.52), (2.5, 0.49), (3.0, 0.47)]
ACCURACY = [0.55, 0.75, 0.70]
EVAL_LOSS = [0.69, 0.58, 0.61]


def log_history(losses, metrics: dict[str, list[float]], steps_per_epoch: int = 10) -> list[dict]:
    history = [
        {"epoch": epoch, "loss": loss, "learning_rate": 1e-3, "step": int(epoch * steps_per_epoch)}
        for epoch, loss in losses
    ]
    epochs = len(next(iter(metrics.values()))) if metrics else 0
    for index in range(epochs):
        epoch = float(index + 1)
        entry = {f"eval_{name}": values[index] for name, values in metrics.items()}
        entry.update(eval_runtime=0.2, eval_samples_per_second=500.0, eval_steps_per_second=60.0)
        history.append({**entry, "epoch": epoch, "step": (index + 1) * steps_per_epoch})
    history.append({"epoch": float(epochs), "train_loss": 0.6, "train_runtime": 3.0, "step": epochs * steps_per_epoch})
    return sorted(history, key=lambda entry: (entry["epoch"], "loss" not in entry))


def write_state(folder: Path, history: list[dict], **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {"best_metric": None, "best_global_step": None, "epoch": 3.0, "log_history": history, **fields}
    (folder / report.STATE_FILE).write_text(json.dumps(state, indent=2))
    return folder


def run_report(capsys, *argv) -> str:
    report.main([str(arg) for arg in argv])
    return capsys.readouterr().out


def table(out: str) -> dict[tuple[str, str], dict]:
    """The printed best-epoch table as {(run, metric): its cells}."""
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("run ")))
    rows = {}
    for line in lines[header + 1 :]:
        if line.startswith("wrote ") or ": no evaluation logged" in line:
            break
        run, metric, best, epoch, step, final, final_epoch, better = line.split()
        rows[run, metric] = {
            "best": float(best),
            "epoch": float(epoch),
            "step": int(step),
            "final": float(final),
            "final_epoch": float(final_epoch),
            "better": better,
        }
    return rows


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def best_of(values: list[float], greater: bool) -> tuple[float, float]:
    """(value, epoch) of the best, the first epoch on a tie, computed independently of the module."""
    best = max(values) if greater else min(values)
    return best, float(values.index(best) + 1)


@pytest.fixture
def run_a(tmp_path) -> Path:
    return write_state(tmp_path / "run-a", log_history(LOSSES, {"accuracy": ACCURACY, "loss": EVAL_LOSS}))


@pytest.fixture
def run_b(tmp_path) -> Path:
    losses = [(epoch, loss + 0.05) for epoch, loss in LOSSES]
    return write_state(
        tmp_path / "run-b", log_history(losses, {"accuracy": [0.60, 0.65, 0.80], "loss": [0.7, 0.6, 0.5]})
    )


def test_one_run_draws_a_png_in_its_folder_and_prints_each_metrics_best_epoch(run_a, capsys):
    out = run_report(capsys, run_a)
    png = run_a / "report.png"
    assert f"wrote {png}" in out
    width, height = png_size(png)
    assert width > 300 and height > 200
    assert matplotlib.image.imread(png).shape[:2] == (height, width)
    rows = table(out)
    # Every eval metric, none of the Trainer's timing bookkeeping.
    assert set(rows) == {("run-a", "eval_accuracy"), ("run-a", "eval_loss")}
    for metric, values, greater in (("eval_accuracy", ACCURACY, True), ("eval_loss", EVAL_LOSS, False)):
        best, epoch = best_of(values, greater)
        row = rows["run-a", metric]
        assert row["best"] == pytest.approx(best, abs=5e-5) and row["epoch"] == epoch
        assert row["step"] == int(epoch) * 10
        assert row["final"] == pytest.approx(values[-1], abs=5e-5) and row["final_epoch"] == len(values)
        assert row["better"] == ("higher" if greater else "lower")


def test_two_runs_share_the_panels_with_a_legend_of_their_labels(run_a, run_b, tmp_path, capsys):
    output = tmp_path / "plots" / "both.png"
    out = run_report(capsys, run_a, run_b, "--labels", "prefix", "prompt", "--output", output)
    assert png_size(output)[0] > 300
    rows = table(out)
    assert {run for run, _ in rows} == {"prefix", "prompt"}
    assert (
        rows["prompt", "eval_accuracy"]["best"] == pytest.approx(0.80) and rows["prompt", "eval_accuracy"]["epoch"] == 3
    )

    figure = report.plot_runs([report.load_run(run_a, "prefix"), report.load_run(run_b, "prompt")])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["prefix", "prompt"]
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible() and ax.get_title()}
    assert set(panels) == {"training loss", "eval_loss", "eval_accuracy"}
    # Each run's curve is on every panel: the training loss at its logged epochs, the metrics per epoch.
    loss_lines = [line for line in panels["training loss"].get_lines() if len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in loss_lines] == [[epoch for epoch, _ in LOSSES]] * 2
    curves = [list(line.get_ydata()) for line in panels["eval_accuracy"].get_lines() if len(line.get_xdata()) > 1]
    assert curves == [ACCURACY, [0.60, 0.65, 0.80]]


def test_several_runs_default_to_report_png_in_the_working_directory(run_a, run_b, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = run_report(capsys, run_a, run_b)
    assert "wrote report.png" in out and png_size(tmp_path / "report.png")[0] > 0
    assert report.default_output([run_a]) == run_a / "report.png"


def test_the_metric_the_trainer_tracked_is_the_default_row(tmp_path, capsys):
    # metric_for_best_model="loss": the state keeps best_metric and its step, not the name.
    best, epoch = best_of(EVAL_LOSS, greater=False)
    history = log_history(LOSSES, {"accuracy": ACCURACY, "loss": EVAL_LOSS})
    run = write_state(tmp_path / "tracked", history, best_metric=best, best_global_step=int(epoch) * 10)
    rows = table(run_report(capsys, run))
    assert list(rows) == [("tracked", "eval_loss")]
    assert rows["tracked", "eval_loss"]["epoch"] == epoch and rows["tracked", "eval_loss"]["better"] == "lower"


def test_best_metric_json_names_the_tracked_metric(run_a, capsys):
    (run_a / "best_metric.json").write_text(
        json.dumps({"best_eval_accuracy": 0.75, "best_epoch": 2.0, "best_step": 20})
    )
    assert list(table(run_report(capsys, run_a))) == [("run-a", "eval_accuracy")]


def test_metric_flag_with_or_without_the_eval_prefix_and_the_direction_override(run_a, capsys):
    for name in ("accuracy", "eval_accuracy"):
        rows = table(run_report(capsys, run_a, "--metric", name))
        assert list(rows) == [("run-a", "eval_accuracy")]
        assert rows["run-a", "eval_accuracy"]["epoch"] == best_of(ACCURACY, True)[1]
    rows = table(run_report(capsys, run_a, "--metric", "accuracy", "--greater_is_better", "false"))
    best, epoch = best_of(ACCURACY, greater=False)
    assert (
        rows["run-a", "eval_accuracy"]["best"] == pytest.approx(best)
        and rows["run-a", "eval_accuracy"]["epoch"] == epoch
    )
    assert rows["run-a", "eval_accuracy"]["better"] == "lower"


def test_a_tie_keeps_the_earliest_epoch_as_the_trainer_does(tmp_path):
    run = report.load_run(write_state(tmp_path / "tie", log_history(LOSSES, {"f1": [0.4, 0.9, 0.9]})))
    [row] = report.best_rows([run])
    assert (row.best, row.best_epoch, row.best_step) == (0.9, 2.0, 20)


def test_a_run_without_its_final_state_is_read_from_its_newest_complete_checkpoint(tmp_path, capsys):
    run = tmp_path / "killed"
    write_state(run / "checkpoint-10", log_history(LOSSES[:2], {"accuracy": ACCURACY[:1]}))
    write_state(run / "checkpoint-20", log_history(LOSSES[:4], {"accuracy": ACCURACY[:2]}))
    (run / "checkpoint-30").mkdir()  # killed while writing: the state file comes last
    (run / "checkpoint-30" / "trainer_state.json").write_text('{"log_history": [')
    assert report.find_state(run) == run / "checkpoint-20" / "trainer_state.json"
    rows = table(run_report(capsys, run))
    assert rows["killed", "eval_accuracy"]["final_epoch"] == 2
    # A checkpoint folder named directly, labelled with its run's name.
    rows = table(run_report(capsys, run / "checkpoint-10"))
    assert list(rows) == [("killed/checkpoint-10", "eval_accuracy")]
    assert (run / "checkpoint-10" / "report.png").is_file()


def test_a_folder_without_a_state_fails_with_one_line_naming_it(tmp_path, capsys):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    for folder in (empty, tmp_path / "missing"):
        with pytest.raises(SystemExit) as exit_info:
            report.main([str(folder)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("python -m prefix_models.report: error: ") and str(folder) in err
        assert err.count("\n") == 1
    assert not (empty / "report.png").exists()


def test_a_metric_the_run_never_logged_is_an_error_listing_what_it_did(run_a, capsys):
    with pytest.raises(SystemExit):
        report.main([str(run_a), "--metric", "f1"])
    err = capsys.readouterr().err
    assert "eval_f1" in err and "eval_accuracy, eval_loss" in err


def test_labels_must_match_the_runs(run_a, run_b, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(run_a), str(run_b), "--labels", "only-one"])
    assert exit_info.value.code == 2 and "--labels gives 1 names for 2 OUTPUT_DIRs" in capsys.readouterr().err


def test_a_run_that_never_evaluated_draws_its_loss_and_says_so(tmp_path, capsys):
    run = write_state(tmp_path / "train-only", log_history(LOSSES, {}))
    out = run_report(capsys, run)
    assert "train-only: no evaluation logged" in out and "run " not in out
    figure = report.plot_runs([report.load_run(run)])
    assert [ax.get_title() for ax in figure.axes if ax.get_visible()] == ["training loss"]


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m prefix_models.report")
    for flag in ("OUTPUT_DIR", "--output", "--labels", "--metric", "--greater_is_better", "trainer_state.json"):
        assert flag in out


def test_without_matplotlib_the_error_says_what_to_install(run_a, monkeypatch, capsys):
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(run_a)])
    assert exit_info.value.code == 1
    assert "pip install 'prefix-models[report]'" in capsys.readouterr().err


def test_report_hint_is_a_command_that_works(tmp_path, capsys):
    run = write_state(tmp_path / "a run", log_history(LOSSES, {"accuracy": ACCURACY}))
    hint = report.report_hint(run)
    assert hint.startswith("Plot this run: python -m prefix_models.report ")
    command = shlex.split(hint.split(": ", 1)[1])
    assert command[:3] == ["python", "-m", "prefix_models.report"] and command[3] == str(run)
    report.main(command[3:])
    assert (run / "report.png").is_file()


def test_the_command_on_a_real_run_glue_run_agrees_with_its_best_epoch_callback(tiny_model, tmp_path):
    import run_glue

    output_dir = tmp_path / "mrpc"
    run_glue.main(
        [
            *("--model_name_or_path", str(tiny_model), "--output_dir", str(output_dir), "--use_cpu"),
            *("--report_to", "none", "--per_device_train_batch_size", "4", "--seed", "0", "--save_strategy", "no"),
            *("--disable_tqdm", "true", "--task_name", "mrpc", "--data_dir", str(FIXTURES / "glue_data")),
            *("--do_train", "--num_train_epochs", "3", "--eval_strategy", "epoch", "--logging_steps", "2"),
            "--prefix",
        ]
    )
    # As a user runs it: a separate process, from the run's parent folder.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "prefix_models.report", "mrpc"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    recorded = json.loads((output_dir / "best_metric.json").read_text())
    [(metric_name, best)] = [
        (key[len("best_") :], value) for key, value in recorded.items() if key.startswith("best_eval")
    ]
    rows = table(result.stdout)
    assert list(rows) == [("mrpc", metric_name)]
    assert rows["mrpc", metric_name]["best"] == pytest.approx(best, abs=5e-5)
    assert rows["mrpc", metric_name]["epoch"] == recorded["best_epoch"]
    assert png_size(output_dir / "report.png")[0] > 300
