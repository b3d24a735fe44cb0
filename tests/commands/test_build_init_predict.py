"""`neuralc build`, `neuralc init` and `neuralc predict` end to end through `neuralc.cli.main`,
plus one real subprocess run of the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralc.cli import main

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available() and not os.environ.get("NEURALC_NO_CUDA")

MLP = """network Mlp {
  input: (3, 4)
  layers:
    Dense(8, activation="relu")
    Dense(4) * 2
    GlobalAveragePooling1D()
    Output(2, activation="softmax")
}
"""

TEXT = """network Tagger {
  input: (6,)
  layers:
    Embedding(input_dim=20, output_dim=4)
    LSTM(5)
    Output(3)
}
"""

TWO = """network First {
  input: (4,)
  layers:
    Dense(2)
}
network Second {
  input: (4,)
  layers:
    Dense(3)
}
"""

BRANCHES = """network Both {
  input: { a: (4,), b: (2,) }
  layers:
    a: { Dense(3) }
    b: { Dense(3) }
    Add()
}
"""

PLACED = """network Placed {
  input: (4,)
  layers:
    Dense(8) @ "cuda:0"
    Output(2)
}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


# build ------------------------------------------------------------------------------------------


def test_build_writes_the_module_next_to_the_working_directory(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write(workdir / "mlp.neural", MLP)
    code, out, err = cli(capsys, "build", str(model), "--target", "pytorch")
    assert code == 0, err
    artifact = workdir / "mlp.py"
    assert out.strip() == str(artifact)
    assert "class Mlp(nn.Module):" in artifact.read_text()
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".")] == []


def test_build_opt_levels_do_not_change_the_output(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each -O level writes its own module (-O2 a functional one), all computing the same
    function from one weight file."""
    model = write(workdir / "mlp.neural", MLP)
    assert cli(capsys, "init", str(model), "-o", "w.safetensors")[0] == 0
    np.save(workdir / "x.npy", np.random.default_rng().standard_normal((3, 3, 4), np.float32))
    outputs = []
    for level in ("0", "1", "2", "3"):
        out = workdir / f"o{level}.py"
        assert cli(capsys, "build", str(model), "--target", "pytorch", "-O", level,
                   "-o", str(out))[0] == 0
        assert "class Mlp(nn.Module):" in out.read_text()
        y = workdir / f"y{level}.npy"
        assert cli(capsys, "predict", str(model), "--target", "pytorch", "-O", level,
                   "--weights", "w.safetensors", "--input", "x.npy", "-o", str(y))[0] == 0
        outputs.append(np.load(y))
    assert (workdir / "o0.py").read_text() != (workdir / "o2.py").read_text()
    for output in outputs[1:]:
        np.testing.assert_allclose(output, outputs[0], atol=1e-5)


def test_build_picks_the_network(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(workdir / "two.neural", TWO)
    code, _, err = cli(capsys, "build", str(model), "--target", "pytorch")
    assert code == 1 and "defines 2 networks" in err and "First, Second" in err
    assert not (workdir / "two.py").exists()
    code, _, err = cli(capsys, "build", str(model), "--target", "pytorch", "--network", "Secnd")
    assert code == 1 and "did you mean 'Second'" in err
    code, _, err = cli(capsys, "build", str(model), "--target", "pytorch", "--network", "Second")
    assert code == 0, err
    assert "class Second(nn.Module):" in (workdir / "two.py").read_text()


def test_failing_build_leaves_no_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(
        workdir / "bad.neural",
        """define B { Dense(4) @ "cuda:0"
  Dense(4) }
network Bad {
  input: (4,)
  layers:
    B * 2
}
""",
    )
    out = workdir / "out" / "bad.py"
    # -O0 keeps the repeat rolled, where a placement differing from its block's is refused.
    code, _, err = cli(capsys, "build", str(model), "--target", "pytorch", "-O0", "-o", str(out))
    assert code == 1
    assert "bad.neural:1:" in err and "placed on cuda:0 inside 'b'" in err
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))


def test_build_checks_weights_and_device(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(workdir / "mlp.neural", MLP)
    code, _, err = cli(
        capsys, "build", str(model), "--target", "pytorch", "--weights", "missing.safetensors"
    )
    assert code == 1 and "does not exist" in err and not (workdir / "mlp.py").exists()
    other = write(workdir / "other.neural", MLP.replace("Dense(8,", "Dense(9,"))
    assert cli(capsys, "init", str(other), "-o", "w.safetensors")[0] == 0
    code, _, err = cli(
        capsys, "build", str(model), "--target", "pytorch", "--weights", "w.safetensors"
    )
    assert code == 1 and "'dense.weight' has shape (9, 4)" in err and "mlp.neural:4:5" in err
    code, _, err = cli(capsys, "build", str(model), "--target", "pytorch", "--device", "tpu")
    assert code == 1 and 'invalid --device "tpu"' in err
    code, _, _ = cli(capsys, "build", str(model), "--target", "pytorch", "--device", "cpu")
    assert code == 0 and 'DEVICE = "cpu"' in (workdir / "mlp.py").read_text()


def test_build_rejects_an_unknown_target(workdir: Path) -> None:
    model = write(workdir / "mlp.neural", MLP)
    with pytest.raises(SystemExit) as info:
        main(["build", str(model), "--target", "caffe"])
    assert info.value.code == 2


# init -------------------------------------------------------------------------------------------


def test_init_writes_deterministic_weights(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.numpy import load_file

    model = write(workdir / "mlp.neural", MLP)
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        code, out, err = cli(
            capsys, "init", str(model), "--seed", seed, "-o", f"{name}.safetensors"
        )
        assert code == 0, err
        assert out.strip() == f"{name}.safetensors"
    a, b, c = (load_file(str(workdir / f"{n}.safetensors")) for n in "abc")
    assert sorted(a) == sorted(
        [
            "dense.weight",
            "dense.bias",
            "dense_1.0.weight",
            "dense_1.0.bias",
            "dense_1.1.weight",
            "dense_1.1.bias",
            "output.weight",
            "output.bias",
        ]
    )
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["dense.weight"], c["dense.weight"])
    big = cli(capsys, "init", str(model), "--seed", str(2**63 - 1), "-o", "big.safetensors")
    assert big[0] == 0 and (workdir / "big.safetensors").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["init", "-o", "d.safetensors"],
        ["build", "--target", "onnx", "-o", "d.onnx"],
        ["run", "--synthetic", "8", "--output-dir", "d"],
        ["tune", "--synthetic", "8", "-o", "d.neural"],
    ],
)
@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("-3", "must be a non-negative integer, got -3"),
        ("1.5", "expected a non-negative integer, got '1.5'"),
        (str(2**63), f"must be at most 2**63 - 1 = {2**63 - 1:,}, got {2**63}"),
    ],
)
def test_seed_is_a_non_negative_int64_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str], command: list[str], seed: str,
    message: str
) -> None:
    """Every command's --seed is 0 to 2**63 - 1 (PyTorch and TensorFlow seeds are int64s);
    past it `run` failed with an OverflowError and `tune` with Optuna's own range error."""
    model = write(workdir / "m.neural", MLP)
    with pytest.raises(SystemExit) as info:
        main([command[0], str(model), *command[1:], "--seed", seed])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"neuralc {command[0]}: error: argument --seed: {message}" in err, err
    assert not any(p.name.startswith("d") for p in workdir.iterdir())


# predict ----------------------------------------------------------------------------------------


def _prepare(
    workdir: Path, capsys: pytest.CaptureFixture[str], text: str, name: str = "m"
) -> tuple[Path, Path]:
    model = write(workdir / f"{name}.neural", text)
    assert cli(capsys, "init", str(model), "--seed", "0", "-o", "w.safetensors")[0] == 0
    return model, workdir / "w.safetensors"


def test_predict_runs_the_built_artifact(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neuralc.lower.pytorch import TARGET

    model, weights = _prepare(workdir, capsys, MLP)
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    save(workdir / "x.npy", x)  # float64: cast to float32
    code, out, err = cli(
        capsys,
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "--input",
        "x.npy",
        "-o",
        "y.npy",
        "--artifact-dir",
        "art",
    )
    assert code == 0, err
    assert out.strip() == "y.npy"
    y = np.load(workdir / "y.npy")
    assert y.shape == (5, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-5)
    # predict builds with its --weights, which the module records relative to itself (WEIGHTS):
    # the same build is `build --weights` to a file as deep as art/m.py.
    assert cli(capsys, "build", str(model), "--target", "pytorch", "--weights", str(weights),
               "-o", "built/m.py")[0] == 0
    built = workdir / "built" / "m.py"
    assert built.read_bytes() == (workdir / "art" / "m.py").read_bytes()
    expected = TARGET.predict(built, weights, {"input": x.astype(np.float32)}, "cpu")
    np.testing.assert_array_equal(y, expected)


def test_predict_onnx_matches_pytorch(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    model, weights = _prepare(workdir, capsys, MLP)
    save(workdir / "x.npy", np.random.default_rng(1).standard_normal((4, 3, 4)))
    outputs = {}
    for target in ("pytorch", "onnx"):
        code, _, err = cli(
            capsys,
            "predict",
            str(model),
            "--target",
            target,
            "--weights",
            str(weights),
            "--input",
            "x.npy",
            "-o",
            f"{target}.npy",
        )
        assert code == 0, err
        outputs[target] = np.load(workdir / f"{target}.npy")
    np.testing.assert_allclose(outputs["onnx"], outputs["pytorch"], atol=1e-5)


def test_predict_token_ids_and_their_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, weights = _prepare(workdir, capsys, TEXT)
    base = [
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "-o",
        "y.npy",
        "--input",
    ]
    save(workdir / "ids.npy", np.arange(12, dtype=np.int32).reshape(2, 6))
    code, _, err = cli(capsys, *base, "ids.npy")
    assert code == 0, err
    assert np.load(workdir / "y.npy").shape == (2, 3)
    (workdir / "y.npy").unlink()
    save(workdir / "floats.npy", np.zeros((2, 6), np.float32))
    code, _, err = cli(capsys, *base, "floats.npy")
    assert code == 1 and "m.neural:4:5" in err and "token ids" in err
    save(workdir / "big.npy", np.full((2, 6), 20, np.int64))
    code, _, err = cli(capsys, *base, "big.npy")
    assert code == 1 and "token id 20" in err and "[0, 20)" in err
    assert not (workdir / "y.npy").exists()


def test_predict_input_shape_errors(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, weights = _prepare(workdir, capsys, MLP)
    base = [
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "-o",
        "y.npy",
        "--input",
    ]
    save(workdir / "nobatch.npy", np.zeros((3, 4), np.float32))
    code, _, err = cli(capsys, *base, "nobatch.npy")
    assert code == 1 and "(3, 4)" in err and "batch dimension first" in err
    save(workdir / "wrong.npy", np.zeros((2, 3, 5), np.float32))
    code, _, err = cli(capsys, *base, "wrong.npy")
    assert code == 1 and "axis 2 must be 4" in err and "m.neural:1:1" in err
    code, _, err = cli(capsys, *base, "absent.npy")
    assert code == 1 and "input file 'absent.npy' does not exist" in err
    save(workdir / "strings.npy", np.array([["a"] * 4] * 3))
    code, _, err = cli(capsys, *base, "strings.npy")
    assert code == 1
    save(workdir / "complex.npy", np.zeros((2, 3, 4), np.complex64))
    code, _, err = cli(capsys, *base, "complex.npy")
    assert code == 1 and "has dtype complex64, but network 'Mlp' takes float32 features" in err
    huge = np.zeros((2, 3, 4))
    huge[1, 2, 3] = -1e300  # became -inf with only numpy's RuntimeWarning
    save(workdir / "huge.npy", huge)
    code, _, err = cli(capsys, *base, "huge.npy")
    assert code == 1 and "holds -1e+300 at index (1, 2, 3), beyond float32's range" in err, err
    assert not (workdir / "y.npy").exists()


def test_predict_missing_weights(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(workdir / "m.neural", MLP)
    save(workdir / "x.npy", np.zeros((1, 3, 4), np.float32))
    code, _, err = cli(
        capsys,
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        "nope.safetensors",
        "--input",
        "x.npy",
        "-o",
        "y.npy",
    )
    assert code == 1 and "weights file 'nope.safetensors' does not exist" in err
    assert "neuralc init" in err


def test_predict_with_named_inputs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, weights = _prepare(workdir, capsys, BRANCHES)
    save(workdir / "a.npy", np.ones((2, 4), np.float32))
    save(workdir / "b.npy", np.ones((2, 2), np.float32))
    base = ["predict", str(model), "--target", "pytorch", "--weights", str(weights), "-o", "y.npy"]
    code, _, err = cli(capsys, *base, "--input", "a.npy")
    assert code == 1 and "name each one" in err
    code, _, err = cli(capsys, *base, "--input", "a=a.npy")
    assert code == 1 and "no array for input 'b'" in err
    save(workdir / "b3.npy", np.ones((3, 2), np.float32))
    code, _, err = cli(capsys, *base, "--input", "a=a.npy", "--input", "b=b3.npy")
    assert code == 1 and "batch size 3" in err
    code, _, err = cli(capsys, *base, "--input", "b=b.npy", "--input", "a=a.npy")
    assert code == 0, err
    assert np.load(workdir / "y.npy").shape == (2, 3)


@pytest.mark.skipif(CUDA, reason="checks the diagnostic of a machine without CUDA")
def test_predict_cuda_placement_without_cuda(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, weights = _prepare(workdir, capsys, PLACED)
    save(workdir / "x.npy", np.ones((2, 4), np.float32))
    base = [
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "--input",
        "x.npy",
        "-o",
        "y.npy",
    ]
    code, _, err = cli(capsys, *base)
    assert code == 1
    assert (
        "m.neural:4:5: error: layer 'dense' is placed on cuda:0 but this machine has no CUDA device"
    ) in err
    assert "note: run with --device cpu" in err
    assert not (workdir / "y.npy").exists()
    code, _, err = cli(capsys, *base, "--device", "cuda")
    assert code == 1 and "no CUDA device" in err
    code, _, err = cli(capsys, *base, "--device", "cpu")
    assert code == 0, err
    assert np.load(workdir / "y.npy").shape == (2, 2)


@pytest.mark.gpu
def test_predict_cuda_placement_on_gpu(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, weights = _prepare(workdir, capsys, PLACED)
    save(workdir / "x.npy", np.ones((2, 4), np.float32))
    base = [
        "predict",
        str(model),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "--input",
        "x.npy",
    ]
    assert cli(capsys, *base, "-o", "gpu.npy")[0] == 0
    assert cli(capsys, *base, "-o", "cpu.npy", "--device", "cpu")[0] == 0
    np.testing.assert_allclose(
        np.load(workdir / "gpu.npy"), np.load(workdir / "cpu.npy"), atol=1e-4
    )
    code, _, err = cli(
        capsys,
        "predict",
        str(write(workdir / "far.neural", PLACED.replace("cuda:0", "cuda:7"))),
        "--target",
        "pytorch",
        "--weights",
        str(weights),
        "--input",
        "x.npy",
        "-o",
        "far.npy",
    )
    assert code == 1 and "placed on cuda:7 but this machine has" in err


def test_command_line_subprocess(workdir: Path) -> None:
    """One real run of the command line (the console script when installed)."""
    model = write(workdir / "m.neural", MLP)
    script = Path(sys.executable).with_name("neuralc")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "neuralc.cli"]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    save(workdir / "x.npy", np.zeros((2, 3, 4), np.float32))
    steps = [
        ["init", str(model), "--seed", "1", "-o", "w.safetensors"],
        [
            "predict",
            str(model),
            "--target",
            "pytorch",
            "--weights",
            "w.safetensors",
            "--input",
            "x.npy",
            "-o",
            "y.npy",
            "--device",
            "cpu",
        ],
    ]
    for step in steps:
        done = subprocess.run(
            [*command, *step], capture_output=True, text=True, env=env, cwd=workdir, check=False
        )
        assert done.returncode == 0, done.stderr
    assert np.load(workdir / "y.npy").shape == (2, 2)
    bad = subprocess.run(
        [
            *command,
            "predict",
            str(model),
            "--target",
            "pytorch",
            "--weights",
            "w.safetensors",
            "--input",
            "w.safetensors",
            "-o",
            "z.npy",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        check=False,
    )
    assert bad.returncode == 1 and "cannot read input file" in bad.stderr


def test_artifacts_get_ordinary_permissions(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Atomic writes go through a 0600 temporary file; the artifact must not keep that mode."""
    import stat

    model = write(workdir / "mlp.neural", MLP)
    assert cli(capsys, "build", str(model), "--target", "pytorch", "-o", "m.py")[0] == 0
    mode = stat.S_IMODE((workdir / "m.py").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
