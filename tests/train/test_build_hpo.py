"""`neuralc build --hpo`: the study of `neuralc tune`, then the build of the resolved program."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from train_testlib import GOOD_AND_BROKEN, RunCli, Writer

from neuralc.cli import main

pytest.importorskip("torch")
pytest.importorskip("optuna")

TINY = """network Tiny {
  input: (4,)
  layers:
    Dense(HPO(choice(4, 8)), activation="relu")
    Output(2, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=HPO(choice(0.01, 0.001)))
  train {
    epochs: 1
    batch_size: 16
    num_trials: 5
  }
}
"""


def test_build_hpo_builds_the_best_combination(
    write: Writer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write("tiny.neural", TINY)
    artifact, resolved = tmp_path / "tiny_best.py", tmp_path / "tiny.resolved.neural"
    args = ["build", model, "--target", "pytorch", "--hpo", "--synthetic", 32, "--trials", 2,
            "-o", artifact, "--resolved-out", resolved]
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert artifact.exists() and "build_model" in artifact.read_text()
    assert out.strip().splitlines()[-1] == str(artifact)
    best = dict(re.findall(r"^  (\S+) = (\S+)$", out, re.MULTILINE))
    assert len(best) == 2, out
    values = {name.split("@")[0]: value for name, value in best.items()}
    dense = next(v for k, v in values.items() if k.startswith("Dense"))
    rate = next(v for k, v in values.items() if "learning_rate" in k)
    assert int(dense) in (4, 8) and float(rate) in (0.01, 0.001)
    text = resolved.read_text()
    assert "HPO(" not in text
    assert f"Dense({int(dense)}," in text and f"learning_rate={float(rate)!r}" in text
    assert main(["check", str(resolved)]) == 0


def test_build_hpo_needs_data(write: Writer, run_cli: RunCli) -> None:
    model = write("tiny.neural", TINY)
    code, err = run_cli("build", model, "--target", "pytorch", "--hpo")
    assert code != 0 and "--hpo needs training data" in err
    code, err = run_cli("build", model, "--target", "pytorch", "--synthetic", 8)
    assert code != 0 and "--synthetic is an option of --hpo" in err


def test_build_hpo_network_option_tunes_only_that_network(
    write: Writer, run_cli: RunCli, tmp_path: Path
) -> None:
    """`--network Good` tunes and builds Good although Broken, in the same file, fails its check
    (it used to block the study: every network of the file was built for each trial)."""
    model = write("two.neural", GOOD_AND_BROKEN)
    code, err = run_cli("check", model)
    assert code == 1 and "num_heads" in err
    artifact, resolved = tmp_path / "good.py", tmp_path / "two.resolved.neural"
    code, err = run_cli("build", model, "--target", "pytorch", "--hpo", "--synthetic", 16,
                        "--trials", 1, "--network", "Good", "-o", artifact,
                        "--resolved-out", resolved)
    assert code == 0, err
    assert "class Good(nn.Module):" in artifact.read_text()
    text = resolved.read_text()
    assert "Dense(HPO(" not in text and "num_heads=HPO(choice(3, 5))" in text  # Broken as it was
    assert run_cli("check", resolved, "--network", "Good")[0] == 0
    code, err = run_cli("build", model, "--target", "pytorch", "--hpo", "--synthetic", 16,
                        "--network", "Godo")
    assert code == 1 and "no network named 'Godo'" in err and "did you mean 'Good'" in err
