"""Every file of the conformance corpus gets the outcome its README states (issue 2).

Accepting files: output shape (no batch) and, where the README or arithmetic fixes it, the total
parameter count. Rejecting files: the diagnostic's line, a phrase of its message and of its note.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuralc.cli import main

ACCEPT: dict[str, tuple[list[int | None], int | None]] = {
    # seed/ — shapes and totals from the conformance README
    "seed/transformer_tf.neural": ([10], 5_521_674),
    "seed/transformer_pt.neural": ([10], 33_091_594),
    "seed/bert_encoder.neural": ([2], 85_056_002),
    "seed/gpt_decoder.neural": ([1024, 50257], 123_702_097),
    "seed/vision_transformer.neural": ([1000], 86_414_056),
    "seed/seq2seq_fixed.neural": ([100, 10000], 54_388_496),
    "seed/custom_attention.neural": ([100, 10], 397_322),
    "seed/hpo_transformer.neural": ([10], None),  # depends on the trial
    "seed/fragments_combined.neural": ([10], 5_521_674),
    # upstream/ — totals by hand: conv 3*3*1*32+32, dense 13*13*32*128+128, output 128*10+10
    "upstream/examples__mnist.neural": ([10], 320 + 692_352 + 1_290),
    "upstream/examples__mnist_2.neural": ([10], None),
    "upstream/examples__mnist_hpo.neural": ([28, 28, 10], None),
    "upstream/examples__advanced_hpo_v0.2.5.neural": ([10], None),
    "upstream/examples__example.neural": ([28, 10], 28 * 128 + 128 + 128 * 10 + 10),
    "upstream/examples__gpu.neural": ([10], 640 + 13 * 13 * 64 * 128 + 128 + 1_290),
    "upstream/examples__layer_multiplication.neural": (
        [10], (32 * 64 + 64) + 2 * (64 * 64 + 64) + 64 * 10 + 10),
    "upstream/examples__LayersMultiplication+NestedLayers.neural": (
        [1, 1, 32], 320 + 2 * (9 * 32 * 32 + 32)),
    "upstream/examples__macros.neural": ([26, 26, 32], 320 + 64),
    "upstream/examples__tiny.neural": ([28, 28, 10], 20),
    # 6 × TransformerEncoderLayer(512, 8, 2048) + Dense(512→256) + Output(256→10)
    "upstream/Lambda-sec_Models__Transformer__transformer.neural": (
        [10], 6 * 3_152_384 + 131_328 + 2_570),
    # conv 7x7 + 2 blocks (2 convs 64) + transition (3x3 s2, 3x3, 1x1 shortcut) + block + head
    "upstream/neuralpaper__backend__models__resnet.neural": (
        [1000], 9_472 + 4 * 36_928 + 73_856 + 147_584 + 8_320 + 2 * 147_584 + 129_000),
    "upstream/tests__parser__test_networks.py__ActivationHPOModel.neural": ([10], None),
    "upstream/tests__parser__test_networks.py__DevicePlacementModel.neural": ([10], None),
    "upstream/tests__parser__test_networks.py__LRScheduleModel.neural": ([10], None),
    "upstream/tests__parser__test_networks.py__MultiInputModel.neural": ([1], None),
    "upstream/tests__parser__test_networks.py__RepetitionModel.neural": ([12, 12, 10], None),
}

# file -> (line of the diagnostic, phrase in the message, phrase in a note or None)
REJECT: dict[str, tuple[int, str, str | None]] = {
    "seed/seq2seq_verbatim.neural": (4, "Embedding", "input: (100,)"),
    "upstream/examples__sentiment.neural": (4, "Embedding", "input: (100,)"),
    "upstream/examples__transformer.neural": (4, "Embedding", "input: (100,)"),
    "upstream/tests__test_parser.py__IncompatibleLayers.neural": (5, "Conv2D", None),
    "upstream/tests__parser__test_networks.py__InvalidDeviceModel.neural": (
        4, 'invalid device "quantum"', "cuda:N"),
    "upstream/examples__Neural_Networks_From_Scratch_In_Python__three_inputs_neuron.neural": (
        7, "defined twice", None),
    "upstream/examples__nested_layers.neural": (5, "TransformerEncoder", None),
    "upstream/Lambda-sec_Models__MathLang__Newton.neural": (4, "TransformerEncoder", "None"),
}


def _check_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    code = main(["check", str(path), "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_corpus_is_fully_covered(conformance_dir: Path) -> None:
    files = {str(p.relative_to(conformance_dir)) for p in conformance_dir.rglob("*.neural")}
    macro_libraries = {"upstream/tests__parser__test_macro.py__ResBlock.neural"}
    assert files == set(ACCEPT) | set(REJECT) | macro_libraries


@pytest.mark.parametrize("name", sorted(ACCEPT))
def test_accepted(name: str, conformance_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shape, params = ACCEPT[name]
    code, summary, err = _check_json(conformance_dir / name, capsys)
    assert code == 0, err
    assert summary is not None
    network = summary["networks"][-1]
    assert network["output_shape"] == shape
    if params is not None:
        assert network["params"] == params
    assert "error" not in err


@pytest.mark.parametrize("name", sorted(REJECT))
def test_rejected(name: str, conformance_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line, message, note = REJECT[name]
    path = conformance_dir / name
    code, _, err = _check_json(path, capsys)
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{line}:"), err
    assert ": error: " in first and message in first, err
    source_line = path.read_text().splitlines()[line - 1]
    assert err.splitlines()[1].strip() == source_line.strip()  # the source line, then a caret
    assert err.splitlines()[2].strip() == "^"
    if note is not None:
        assert any(n.startswith("note:") and note in n for n in err.splitlines()), err
    assert "Traceback" not in err


def test_macro_library_is_accepted(conformance_dir: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = conformance_dir / "upstream/tests__parser__test_macro.py__ResBlock.neural"
    assert main(["check", str(path)]) == 0
    assert "ResBlock" in capsys.readouterr().out


def test_device_placement_per_layer(conformance_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = conformance_dir / "upstream/tests__parser__test_networks.py__DevicePlacementModel.neural"
    _, summary, _ = _check_json(path, capsys)
    assert summary is not None
    devices = [layer["device"] for layer in summary["networks"][0]["layers"]]
    assert devices == ["cuda:0", "cuda:0", "cuda:1", "cuda:1", "cpu"]


def test_repetition_expands_to_seven_layers(conformance_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = conformance_dir / "upstream/tests__parser__test_networks.py__RepetitionModel.neural"
    _, summary, _ = _check_json(path, capsys)
    assert summary is not None
    assert len(summary["networks"][0]["layers"]) == 7


def test_embedding_input_is_int64(conformance_dir: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, summary, _ = _check_json(conformance_dir / "seed/seq2seq_fixed.neural", capsys)
    assert summary is not None
    assert summary["networks"][0]["input_dtype"] == "i64"
    assert summary["networks"][0]["input_shape"] == [100]
