"""The corners of the dialect, one small program each."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from frontend_testlib import REPO, py, render_layer

from neuralc.diagnostics import SourceLocation
from neuralc.frontend import ast
from neuralc.frontend.parser import ParseError, _metamodel, parse_text


def net(body: str) -> ast.Network:
    (network,) = parse_text(f"network N {{\n{textwrap.dedent(body)}\n}}\n").networks
    return network


def layers(text: str) -> list[str]:
    return [render_layer(item) for item in net(f"layers:\n{text}").layers]


def setting(value: str) -> object:
    return py(net(f"train {{ x: {value} }}").blocks[0].settings[0].value)


def test_layers_on_the_layers_line_with_a_comment() -> None:
    assert layers("") == []
    network = net("layers: MyBlock() * 3  # reuse\nloss: mse")
    assert [render_layer(item) for item in network.layers] == ["MyBlock() * 3"]
    assert py(network.loss) == "<mse>"


@pytest.mark.parametrize(
    "text", ['Conv2D(32) * 2 @ "cuda:0"', 'Conv2D(32) @ "cuda:0" * 2', 'Conv2D(32)*2@"cuda:0"']
)
def test_repeat_and_device_in_either_order(text: str) -> None:
    assert layers(text) == ['Conv2D(32) * 2 @ "cuda:0"']


def test_bare_layers_blocks_and_bodies() -> None:
    assert layers("ConvBlock\nFlatten\nDense(3)") == ["ConvBlock", "Flatten", "Dense(3)"]
    assert layers("ResidualConnection { Dense(1) }\nResidualConnection() { }") == [
        "ResidualConnection { Dense(1) }",
        "ResidualConnection() { }",
    ]
    assert layers("T(num_heads=8, ff_dim=512) {\n  A { B() }\n} * HPO(choice(6, 12))") == [
        "T(num_heads=8, ff_dim=512) { A { B() } } * HPO(choice(6, 12))"
    ]
    (call,) = net("layers: Flatten").layers
    assert isinstance(call, ast.LayerCall) and not call.has_parens and call.body is None


def test_comments_between_a_name_and_its_colon() -> None:
    # Found by the round-trip property: `key # comment` + newline + `: value` is a setting, and a
    # colon inside a comment after a bare layer does not make the layer a setting key.
    network = net("layers:\n  Dense  # units: none\n  Flatten\nseed  # why: luck\n: 3")
    assert [render_layer(item) for item in network.layers] == ["Dense", "Flatten"]
    assert [(s.key, py(s.value)) for s in network.settings] == [("seed", 3)]


def test_a_long_comment_after_a_bare_layer_is_fast() -> None:
    # The layer-name lookahead skips comments; a backtracking one was exponential in spaces.
    net("layers:\n  Dense  # " + "a " * 200 + "\n  Flatten")


def test_keywords_are_not_layer_names() -> None:
    network = net("layers:\n Dense(1)\n train { epochs: 1 }\n execution { device: 'cpu' }")
    assert len(network.layers) == 1 and [b.keyword for b in network.blocks] == [
        "train",
        "execution",
    ]
    network = net("layers: Dense(1) Flatten\nmetrics: ['accuracy']\noptimizer: Adam")
    assert (len(network.layers), py(network.metrics), py(network.optimizer)) == (
        2,
        ["accuracy"],
        "<Adam>",
    )


def test_sections_in_any_order_and_unknown_settings() -> None:
    network = net(
        """
        execute { device: "cuda" }
        loss: categorical_crossentropy;
        seed: 42
        layers:
          Dense(1);
        backend: "torch"
        input: (None, 3)
        """
    )
    assert (py(network.loss), [render_layer(i) for i in network.layers]) == (
        "<categorical_crossentropy>",
        ["Dense(1)"],
    )
    assert [s.key for s in network.settings] == ["seed", "backend"]
    assert [b.keyword for b in network.blocks] == ["execute"]
    assert py(network.inputs[0].shape) == (None, 3)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("(3)", (3,)),
        ("(100,)", (100,)),
        ("()", ()),
        ("(None, 28, 28)", (None, 28, 28)),
        ("(NONE, 512)", (None, 512)),
        ("(28,28,1,)", (28, 28, 1)),
    ],
)
def test_input_shapes(shape: str, expected: tuple) -> None:
    (spec,) = net(f"input: {shape}").inputs
    assert spec.name is None and isinstance(spec.shape, ast.TupleExpr)
    assert py(spec.shape) == expected


def test_named_inputs_with_and_without_commas() -> None:
    network = net("input: { a: (1, 2), b: (3) c: (4,), }")
    assert [(s.name, py(s.shape)) for s in network.inputs] == [
        ("a", (1, 2)),
        ("b", (3,)),
        ("c", (4,)),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-3", -3),
        ("10_000", 10000),
        ("1e-4", 1e-4),
        ("2e-5", 2e-5),
        (".5", 0.5),
        ("5.", 5.0),
        ("+1.5", 1.5),
        ("1E3", 1000.0),
        ("true", True),
        ("True", True),
        ("false", False),
        ("False", False),
        ("None", None),
        ("NONE", None),
        ("none", None),
        ('"a\\"b\\\\c\\n"', 'a"b\\c\n'),
        ("'single'", "single"),
        ("'it\\'s'", "it's"),
        ('"\\q"', "\\q"),
        ('"# not a comment"', "# not a comment"),
        ("(2)", 2),
        ("(2,)", (2,)),
        ("((1, 2), [3, [4]])", ((1, 2), [3, [4]])),
        ("[]", []),
        ("relu", "<relu>"),
        ("Nonexistent", "<Nonexistent>"),
        ("f(g(1), k=h())", ("f", ("g", 1), ("k", ("h",)))),
        ('HPO(choice("a", "b"))', ("HPO", "choice", "a", "b")),
        ("HPO(range(1, 9, step=2))", ("HPO", "range", 1, 9, ("step", 2))),
        ("HPO(log_range(1e-5, 1e-3))", ("HPO", "log_range", 1e-5, 1e-3)),
    ],
)
def test_values(text: str, value: object) -> None:
    result = setting(text)
    assert result == value and type(result) is type(value)


def test_types_of_numbers_and_booleans_are_kept() -> None:
    assert [type(setting(t)) for t in ("1", "1.0", "true", "1e3")] == [int, float, bool, float]


def test_hpo_anywhere_a_literal_stands() -> None:
    network = net(
        """
        layers:
          Dense(HPO(choice(8, 16)), activation=HPO(choice("relu", "tanh"))) * HPO(choice(1, 2))
        optimizer: SGD(learning_rate=ExponentialDecay(
            HPO(range(0.05, 0.2, step=0.05)),  # initial
            1000,                              # steps
          ),
        )
        train { batch_size: HPO(choice(32, 64)) }
        """
    )
    (dense,) = network.layers
    assert isinstance(dense, ast.LayerCall) and isinstance(dense.repeat, ast.HPO)
    assert [py(a.value)[1] for a in dense.args] == ["choice", "choice"]
    assert py(network.optimizer) == (
        "SGD",
        ("learning_rate", ("ExponentialDecay", ("HPO", "range", 0.05, 0.2, ("step", 0.05)), 1000)),
    )


def test_optimizer_forms() -> None:
    assert py(net("optimizer: Adam").optimizer) == "<Adam>"
    assert py(net('optimizer: "adam"').optimizer) == "adam"
    # A string stays a string; the checker reads calls written inside one.
    assert py(net('optimizer: "Adam(learning_rate=1e-4)"').optimizer) == "Adam(learning_rate=1e-4)"
    assert py(net("optimizer: Adam(learning_rate=1e-3)").optimizer) == (
        "Adam",
        ("learning_rate", 0.001),
    )


def test_whitespace_comments_semicolons_crlf_and_bom() -> None:
    text = "\ufeff  # header\r\n  network A{layers:Dense(1);Dense(2)}network B { }"
    program = parse_text(text, "x.neural")
    assert [n.name for n in program.networks] == ["A", "B"]
    assert program.networks[0].loc == SourceLocation("x.neural", 2, 3)
    assert program.source == text[1:]


def test_macro_library_and_macro_uses() -> None:
    program = parse_text("define A { Dense(1) }\ndefine B {\n  A\n  A() * 2\n}\n")
    assert program.networks == ()
    assert [(m.name, [render_layer(i) for i in m.layers]) for m in program.macros] == [
        ("A", ["Dense(1)"]),
        ("B", ["A", "A() * 2"]),
    ]


def test_branch_blocks_inside_layers() -> None:
    network = net("layers:\n  a: { Dense(1) }\n  b: {\n  }\n  Concatenate()")
    assert [render_layer(i) for i in network.layers] == [
        "a: { Dense(1) }",
        "b: { }",
        "Concatenate()",
    ]


def test_argument_locations() -> None:
    (dense,) = net("layers:\n  Dense( 10 ,units = 3)").layers
    assert isinstance(dense, ast.LayerCall)
    assert [(a.loc.line, a.loc.column) for a in dense.args] == [(3, 10), (3, 14)]
    assert (dense.args[1].value.loc.line, dense.args[1].value.loc.column) == (3, 22)


def test_metamodel_is_built_once() -> None:
    assert _metamodel() is _metamodel()


def test_check_path_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from neuralc.frontend.parser import parse_file\n"
        "parse_file(sys.argv[1])\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'numpy', 'onnx', 'triton') if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t)\n"
    )
    example = REPO / "examples" / "transformer.neural"
    result = subprocess.run(
        [sys.executable, "-c", code, str(example)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    heavy, seconds = result.stdout.split("]")
    assert heavy == "["
    assert float(seconds) < 1.0  # about 0.1 s; loose so a loaded machine does not flake


@pytest.mark.parametrize("text", ["(,)", "[,]", "f(,)", "HPO(choice(,))"])
def test_a_lone_trailing_comma_is_an_error(text: str) -> None:
    with pytest.raises(ParseError) as info:
        net(f"train {{ x: {text} }}")
    assert info.value.diagnostics[0].message.endswith("or a value, found ','")
