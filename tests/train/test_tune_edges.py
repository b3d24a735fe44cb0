"""`neuralc tune` at its edges: values the resolved file must keep exactly, a study reopened
with another search space, outputs that cannot be written, combinations that do not build and
trials that overflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_testlib import RunCli, Writer, read_json

pytest.importorskip("torch")
pytest.importorskip("optuna")


def model(layers: str = "Dense(HPO(choice(4, 8)))", rate: str = "0.01", extra: str = "") -> str:
    return f"""network M {{
  input: (8,)
  layers:
    {layers}
    Output(2, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate={rate})
  train {{ epochs: 1  batch_size: 8  num_trials: 2  seed: 3 {extra}}}
}}
"""


def test_tiny_log_range_value_is_written_as_trained(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """The resolved learning rate is the best trial's own (it was rounded to 12 decimal
    places: 0.0 for a range below 1e-12, which the resolved file's check then refused)."""
    path = write("m.neural", model("Dense(4)", "HPO(log_range(1e-15, 1e-13))"))
    out, metrics = tmp_path / "r.neural", tmp_path / "m.json"
    code, err = run_cli("tune", path, "--synthetic", 32, "-o", out, "--metrics-json", metrics)
    assert code == 0, err
    (best,) = read_json(metrics)["best_params"].values()
    assert 1e-15 <= best <= 1e-13
    assert f"learning_rate={best!r})" in out.read_text()


def test_study_reopened_with_another_space_is_a_diagnostic(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = write("a.neural", model())
    assert run_cli("tune", first, "--synthetic", 32, "--storage", storage,
                   "-o", tmp_path / "a.r.neural")[0] == 0
    for layers in ("Dense(HPO(choice(16, 32)))", "Dense(HPO(range(1, 3)))"):
        second = write("b.neural", model(layers))
        code, err = run_cli("tune", second, "--synthetic", 32, "--storage", storage,
                            "-o", tmp_path / "b.r.neural")
        assert code == 1, err
        assert "b.neural:4:11: error: the study 'M' in the storage already searched" in err
        assert "--study-name" in err and "internal error" not in err
    # Another study name in the same database is a study of its own.
    code, err = run_cli("tune", second, "--synthetic", 32, "--storage", storage,
                        "--study-name", "other", "-o", tmp_path / "b.r.neural")
    assert code == 0, err


def test_outputs_are_checked_before_the_study(
    write: Writer, run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("m.neural", model())
    source = path.read_text()
    code, err = run_cli("tune", path, "--synthetic", 32, "-o", path)
    assert code == 1 and "is the model itself" in err
    assert path.read_text() == source  # the HPO source is not replaced
    for option in ("-o", "--metrics-json"):
        code, err = run_cli("tune", path, "--synthetic", 32, option, tmp_path)
        assert code == 1 and "it is a directory" in err
    code, err = run_cli("build", path, "--target", "pytorch", "--hpo", "--synthetic", 32,
                        "--resolved-out", path)
    assert code == 1 and "is the model itself" in err and path.read_text() == source


def test_first_combination_that_does_not_build_is_only_a_pruned_trial(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """num_heads=3 (the first choice) does not divide d_model=8: the study still runs and
    picks 2; it used to stop before any trial, on the first combination's diagnostic."""
    text = """network M {
  input: (4, 8)
  layers:
    TransformerEncoder(num_heads=HPO(choice(3, 2)), d_model=8, dff=8)
    GlobalAveragePooling1D()
    Output(2, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.01)
  train { epochs: 1  batch_size: 8  num_trials: 2  seed: 3  search_method: "grid" }
}
"""
    out, metrics = tmp_path / "r.neural", tmp_path / "m.json"
    code, err = run_cli("tune", write("h.neural", text), "--synthetic", 32, "-o", out,
                        "--metrics-json", metrics)
    assert code == 0, err
    assert "num_heads=2," in out.read_text()
    states = sorted(t["state"] for t in read_json(metrics)["trials"])
    assert states == ["complete", "pruned"]
    # When no combination builds, the diagnostic is the first one's, at its location.
    code, err = run_cli("tune", write("h2.neural", text.replace("(3, 2)", "(3, 5)")),
                        "--synthetic", 32, "-o", out)
    assert code == 1 and "h2.neural:4:24: error: TransformerEncoder num_heads=3" in err


def test_learning_rate_that_overflows_float32_is_a_diagnostic(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    path = write("m.neural", model("Dense(4)", "HPO(range(1e-300, 1e300))"))
    code, err = run_cli("tune", path, "--synthetic", 32, "-o", tmp_path / "r.neural")
    # located at the network when the failures carry no location of their own
    assert code == 1 and f"{path}:1:1: error: no trial completed" in err, err
    assert "training overflowed float32" in err and "internal error" not in err
    run = write("r.neural", model("Dense(4)", "1e300"))
    code, err = run_cli("run", run, "--synthetic", 32, "--output-dir", tmp_path / "out")
    assert code == 1 and "training overflowed float32" in err


def test_no_trial_completed_points_at_the_first_located_failure(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """"no trial completed" is located at the first failure recorded with a location in this
    model's file; trials without one, or from another process's file in a shared study, are
    passed over (the caller then falls back to the network's line)."""
    from neuralc.train.hpo import _failure_location

    class Trial:
        def __init__(self, at: object) -> None:
            self.user_attrs = {"error": "x", "error_at": at} if at is not None else {}

    here = str(tmp_path / "m.neural")
    trials = [Trial(None), Trial(["other.neural", 3, 4]), Trial([here, 5, 7]), Trial([here, 9, 1])]
    loc = _failure_location(trials, here)  # type: ignore[arg-type]
    assert loc is not None and (loc.file, loc.line, loc.column) == (here, 5, 7)
    assert _failure_location(trials[:2], here) is None  # type: ignore[arg-type]
