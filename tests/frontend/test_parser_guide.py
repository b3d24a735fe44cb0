"""Every program and fragment of the migration guide parses; examples/ holds its programs."""

from __future__ import annotations

import pytest
from frontend_testlib import (
    EXAMPLES,
    GUIDE,
    guide_yaml_blocks,
    is_program,
    py,
    render_layer,
    strip,
    wrap_fragment,
)

from neuralc.frontend import ast
from neuralc.frontend.parser import parse_file, parse_text

# The guide's programs in order, with the example file each one is copied to.
PROGRAMS = [
    ("TransformerModel", "transformer_tensorflow.neural"),
    ("TransformerModel", "transformer.neural"),
    ("BERTEncoder", "bert_encoder.neural"),
    ("GPTDecoder", "gpt_decoder.neural"),
    ("VisionTransformer", "vision_transformer.neural"),
    ("Seq2SeqTransformer", "sequence_to_sequence.neural"),
    ("CustomAttention", "custom_attention.neural"),
    ("HPOModel", "hpo_transformer.neural"),
]


def _blocks() -> list[tuple[int, str]]:
    return guide_yaml_blocks() if GUIDE.exists() else []


def _programs() -> list[tuple[int, str]]:
    return [(line, code) for line, code in _blocks() if is_program(code)]


def _fragments() -> list[tuple[int, str]]:
    return [(line, code) for line, code in _blocks() if not is_program(code)]


def test_guide_has_the_expected_blocks() -> None:
    blocks = guide_yaml_blocks()  # skips when the guide is missing
    programs = [code for _, code in blocks if is_program(code)]
    assert (len(blocks), len(programs)) == (18, len(PROGRAMS))


@pytest.mark.parametrize(("line", "code"), _programs(), ids=lambda v: str(v)[:12])
def test_guide_program_parses(line: int, code: str) -> None:
    program = parse_text(code, f"migration_guide.md@{line}")
    (net,) = program.networks
    assert len(net.inputs) == 1 and net.layers and net.optimizer is not None
    assert [b.keyword for b in net.blocks] == ["train"]


def test_guide_programs_in_order() -> None:
    names = [parse_text(code).networks[0].name for _, code in _programs()]
    assert names == [name for name, _ in PROGRAMS]


@pytest.mark.parametrize(("line", "code"), _fragments(), ids=lambda v: str(v)[:12])
def test_guide_fragment_parses_inside_a_network(line: int, code: str) -> None:
    (net,) = parse_text(wrap_fragment(code), f"migration_guide.md@{line}").networks
    parts = [net.optimizer, *net.blocks, *net.layers]
    assert len([p for p in parts if p is not None]) >= 1


def test_guide_fragments_structure() -> None:
    nets = [parse_text(wrap_fragment(code)).networks[0] for _, code in _fragments()]
    optimizers = [py(n.optimizer) for n in nets if n.optimizer is not None]
    adam = ("Adam", ("learning_rate", 0.0001), ("beta_1", 0.9), ("beta_2", 0.999))
    schedule = ("Adam", ("learning_rate", ("ExponentialDecay", 0.0001, 10000, 0.96)))
    assert optimizers == [(*adam, ("epsilon", 1e-8))] * 2 + [schedule] * 2
    blocks = [(b.keyword, {s.key: py(s.value) for s in b.settings}) for n in nets for b in n.blocks]
    train = {"epochs": 20, "batch_size": 32, "validation_split": 0.2}
    assert blocks == [
        ("train", {**train, "early_stopping_patience": 3, "checkpoint_path": "best_model.h5"}),
        ("train", train),
        ("execution", {"device": "cuda:0"}),
        ("execution", {"device": "cuda:0"}),
        ("execution", {"mixed_precision": True}),
        ("execution", {"mixed_precision": True}),
    ]
    # `TransformerEncoder(...)`: the guide's "arguments elided" is kept as a placeholder name.
    layers = [layer for n in nets for layer in n.layers]
    assert [render_layer(layer) for layer in layers] == ['TransformerEncoder(...) @ "cuda:0"']
    (layer,) = layers
    assert isinstance(layer, ast.LayerCall)
    assert layer.args[0].value == ast.Name("...", layer.args[0].value.loc)


def _example(name: str) -> ast.Program:
    path = EXAMPLES / name
    assert path.exists(), f"examples/{name} is missing"
    return parse_file(path)


@pytest.mark.parametrize("index", range(len(PROGRAMS)), ids=[f for _, f in PROGRAMS])
def test_example_is_the_guide_program(index: int) -> None:
    programs = guide_yaml_blocks()
    code = [c for _, c in programs if is_program(c)][index]
    guide = parse_text(code)
    example = _example(PROGRAMS[index][1])
    if PROGRAMS[index][1] != "sequence_to_sequence.neural":
        assert strip(example) == strip(guide)
        return
    # The guide feeds Embedding (100, 512) float features; the example takes (100,) token ids
    # and is otherwise the guide's program.
    (fixed,) = example.networks
    (verbatim,) = guide.networks
    assert py(verbatim.inputs[0].shape) == (100, 512)
    assert py(fixed.inputs[0].shape) == (100,)
    assert strip(fixed.layers) == strip(verbatim.layers)
    assert strip(fixed.blocks) == strip(verbatim.blocks)


def test_main_example_is_the_six_layer_transformer() -> None:
    (net,) = _example("transformer.neural").networks
    encoder = net.layers[0]
    assert isinstance(encoder, ast.LayerCall) and encoder.name == "TransformerEncoder"
    assert py(encoder.repeat) == 6
    assert py(net.loss) == "cross_entropy"
