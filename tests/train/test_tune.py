"""`neuralc tune`: a study over every HPO(...) with sqlite storage, the resolved file, samplers
and the search-space plumbing."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_testlib import GOOD_AND_BROKEN, RunCli, Writer, read_json

from neuralc.cli import main
from neuralc.frontend.parser import parse_text
from neuralc.train.hpo import sampler_seed
from neuralc.train.space import collect, hpo_end, resolve_source

pytest.importorskip("torch")
optuna = pytest.importorskip("optuna")

TUNED = """define Block {
  Dense(HPO(choice(8, 16)), activation="relu")
}
network Tuned {
  input: (8,)
  layers:
    Block
    Dropout(HPO(range(0.0, 0.2, step=0.1)))
    Dense(8) * HPO(choice(1, 2))
    Output(3, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=HPO(log_range(1e-3, 1e-1)))  # the rate (a comment)
  metrics: ["accuracy"]
  train {
    epochs: 2
    batch_size: HPO(choice(16, 32))
    validation_split: 0.25
    search_method: "bayesian"
    num_trials: 3
  }
}
"""


def test_three_trial_study_writes_sqlite_and_a_resolved_model(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    model = write("tuned.neural", TUNED)
    db, resolved = tmp_path / "study.db", tmp_path / "resolved.neural"
    code, err = run_cli(
        "tune",
        model,
        "--synthetic",
        128,
        "--storage",
        f"sqlite:///{db}",
        "--study-name",
        "s1",
        "--metrics-json",
        tmp_path / "t.json",
        "-o",
        resolved,
    )
    assert code == 0, err
    assert db.exists()
    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3
    assert all(t.intermediate_values for t in study.trials)  # per-epoch val_loss, for pruning
    report = read_json(tmp_path / "t.json")
    assert len(report["trials"]) == 3 and report["best_value"] == study.best_value
    assert set(report["best_params"]) == {hp.name for hp in collect(parse_text(TUNED, "t"))}
    text = resolved.read_text()
    assert "HPO(" not in text and "# the rate (a comment)" in text
    assert main(["check", str(resolved)]) == 0
    # A second process (here: a second call) continues the same study.
    assert (
        run_cli(
            "tune",
            model,
            "--synthetic",
            128,
            "--storage",
            f"sqlite:///{db}",
            "--study-name",
            "s1",
            "--trials",
            1,
            "-o",
            resolved,
        )[0]
        == 0
    )
    assert len(optuna.load_study(study_name="s1", storage=f"sqlite:///{db}").trials) == 4


def test_search_space_covers_every_hpo() -> None:
    space = collect(parse_text(TUNED, "t.neural"))
    names = [hp.name.split("@")[0] for hp in space]
    assert names == [
        "Dense.0",
        "Dropout.0",
        "Dense*",
        "optimizer.Adam.learning_rate",
        "train.batch_size",
    ]
    grid = {hp.name.split("@")[0]: hp for hp in space}
    assert grid["Dropout.0"].grid_values() == [0.0, 0.1, 0.2]
    with pytest.raises(Exception, match="grid search cannot enumerate"):
        grid["optimizer.Adam.learning_rate"].grid_values()


def test_resolved_source_replaces_each_hpo_span() -> None:
    text = (
        "network N {\n  input: (4,)\n  layers:\n    Conv1D(HPO(choice(8, 16)), "
        'HPO(choice((3,), (5,))), padding="same")\n    Dense(HPO(choice(2, 3)))\n}\n'
    )
    program = parse_text(text, "n.neural")
    space = collect(program)
    start = text.index("HPO(choice((3,)")
    assert text[start : hpo_end(text, start)] == "HPO(choice((3,), (5,)))"
    values = dict(zip([hp.loc for hp in space], [16, (5,), 3], strict=True))
    out = resolve_source(program, values)
    assert 'Conv1D(16, (5,), padding="same")' in out and "Dense(3)" in out


def test_grid_search_enumerates_choices(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    text = (
        TUNED.replace('"bayesian"', '"grid"')
        .replace("HPO(log_range(1e-3, 1e-1))", "HPO(choice(0.01, 0.05))")
        .replace("HPO(choice(1, 2))", "1")
        .replace("HPO(range(0.0, 0.2, step=0.1))", "0.0")
        .replace("HPO(choice(16, 32))", "32")
    )
    model = write("grid.neural", text)
    code, err = run_cli(
        "tune",
        model,
        "--synthetic",
        64,
        "--trials",
        10,
        "--epochs",
        1,
        "--metrics-json",
        tmp_path / "g.json",
        "-o",
        tmp_path / "r.neural",
    )
    assert code == 0, err
    trials = read_json(tmp_path / "g.json")["trials"]

    def param(trial: dict, prefix: str) -> object:
        return next(v for k, v in trial["params"].items() if k.startswith(prefix))

    seen = {(param(t, "Dense.0@"), param(t, "optimizer.Adam.learning_rate@")) for t in trials}
    assert seen == {(8, 0.01), (8, 0.05), (16, 0.01), (16, 0.05)}  # the whole grid, once


def test_grid_search_refuses_continuous_ranges(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    model = write("g.neural", TUNED.replace('"bayesian"', '"grid"'))
    code, err = run_cli("tune", model, "--synthetic", 64, "-o", tmp_path / "r.neural")
    assert code == 1 and "grid search cannot enumerate HPO(log_range(...))" in err


def test_tune_needs_hpo(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    model = write("n.neural", "network N {\n  input: (4,)\n  layers:\n    Dense(2)\n}\n")
    code, err = run_cli("tune", model, "--synthetic", 16, "-o", tmp_path / "r.neural")
    assert code == 1 and "the model has no HPO(...) expressions to search" in err


def test_network_option_tunes_only_that_network(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """`tune --network Good` runs its study although Broken, in the same file, fails its check;
    the resolved file resolves Good's HPO expressions and keeps Broken as it was."""
    model = write("two.neural", GOOD_AND_BROKEN)
    resolved = tmp_path / "resolved.neural"
    code, err = run_cli("tune", model, "--synthetic", 16, "--trials", 1, "--network", "Good",
                        "-o", resolved)
    assert code == 0, err
    text = resolved.read_text()
    assert "Dense(HPO(" not in text and "num_heads=HPO(choice(3, 5))" in text
    assert run_cli("check", resolved, "--network", "Good")[0] == 0
    code, err = run_cli("tune", model, "--synthetic", 16, "--network", "Broken", "-o", resolved)
    assert code == 1 and "two.neural:16:" in err and "num_heads" in err


@pytest.mark.parametrize("command", [["tune"], ["build", "--target", "pytorch", "--hpo"]])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--trials", "0", "must be a positive integer, got 0"),
        ("--trials", "1e3", "expected a positive integer, got '1e3'"),
        ("--trials", str(10**23), "must be at most 2**63 - 1"),
        ("--timeout", "0", "must be a positive, finite number of seconds, got '0'"),
        ("--timeout", "-1", "must be a positive, finite number of seconds, got '-1'"),
        ("--timeout", "nan", "must be a positive, finite number of seconds, got 'nan'"),
        ("--timeout", "inf", "must be a positive, finite number of seconds, got 'inf'"),
        ("--timeout", "soon", "expected a number of seconds, got 'soon'"),
        ("--synthetic", "0", "must be a positive integer, got 0"),
    ],
)
def test_study_options_are_usage_errors_before_anything_runs(
    command: list[str], option: str, value: str, message: str, write: Writer,
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--trials` past int64 used to start a study that never ends, `--timeout 0` (or below)
    ran no trial and blamed pruning, `--timeout nan` meant no limit: each is exit 2 now."""
    model = write("tuned.neural", TUNED)
    args = [*command[:1], str(model), *command[1:], "--synthetic", "16", option, value,
            "-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {message}" in err, err
    assert not (tmp_path / "out").exists()


def test_sampler_seed_fits_numpy_legacy_range() -> None:
    """Optuna's samplers take 0..2**32 - 1; neuralc's seeds are int64s. Small seeds pass
    through unchanged, large ones are mixed down deterministically."""
    assert [sampler_seed(s) for s in (0, 7, 2**32 - 1)] == [0, 7, 2**32 - 1]
    large = [sampler_seed(s) for s in (2**32, 2**40 + 3, 2**63 - 1)]
    assert all(0 <= s < 2**32 for s in large)
    assert len(set(large)) == 3
    assert large == [sampler_seed(s) for s in (2**32, 2**40 + 3, 2**63 - 1)]


def test_tune_with_a_seed_past_32_bits(write: Writer, run_cli: RunCli, tmp_path: Path) -> None:
    """`train { seed }` and --seed may be any int64; Optuna refused those past 2**32 - 1 with a
    ValueError that surfaced as an internal error."""
    model = write("tuned.neural", TUNED.replace("num_trials: 3", "num_trials: 1"))
    resolved = tmp_path / "r.neural"
    code, err = run_cli("tune", model, "--synthetic", 32, "--seed", 2**63 - 1, "-o", resolved)
    assert code == 0, err
    assert resolved.exists()
