"""The training loop's source text, for the emitters: the standalone template modules
(`train_core`, `train_data`, `train_torch_ops` + `train_torch`, or `train_keras_ops` +
`train_keras`) joined into one block without their docstrings, `__future__` imports and imports
of each other. `neuralc.lower.training` re-exports these functions."""

from __future__ import annotations

import ast as pyast
from pathlib import Path

_HERE = Path(__file__).resolve().parent
TEMPLATES = {
    # predict_cli, module_cli: the module's command line (predict_main, train_main), last:
    # they use the rest.
    "pytorch": (
        "train_core.py", "train_data.py", "train_torch_ops.py", "train_torch.py",
        "predict_cli.py", "module_cli.py",
    ),
    "tensorflow": ("train_core.py", "train_data.py", "train_keras_ops.py", "train_keras.py"),
}


def training_source(target: str = "pytorch", imports: bool = True) -> str:
    """The training loop's source, to append to an emitted module (which already starts with
    `from __future__ import annotations`): the templates without their docstrings, `__future__`
    imports and imports of each other. With `imports=False` the top-level imports are left out
    too, for an emitter that merges `training_imports(target)` into its own import block."""
    parts = [
        _strip((_HERE / name).read_text(encoding="utf-8"), imports)[1] for name in TEMPLATES[target]
    ]
    header = "# --- Training loop and command line: train(), train_main(), predict_main() ---"
    return header + "\n\n" + "\n\n".join(parts)


def predict_cli_source() -> tuple[list[str], str]:
    """(its imports, its text): the inference command line alone, for the Keras module, which
    carries no training loop."""
    return _strip((_HERE / "predict_cli.py").read_text(encoding="utf-8"), False)


def template_names(target: str = "pytorch") -> frozenset[str]:
    """The top-level names the templates define (functions, classes, constants): a generated
    class named like one (a network called `DataError`) would replace it in the module."""
    names: set[str] = set()
    for name in TEMPLATES[target]:
        for node in pyast.parse((_HERE / name).read_text(encoding="utf-8")).body:
            if isinstance(node, pyast.FunctionDef | pyast.ClassDef):
                names.add(node.name)
            elif isinstance(node, pyast.Assign | pyast.AnnAssign):
                targets = node.targets if isinstance(node, pyast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, pyast.Name))
    return frozenset(names)


def training_imports(target: str = "pytorch") -> list[str]:
    """The templates' top-level imports, merged: `import x` lines, then one `from m import ...`
    per module."""
    plain: dict[str, None] = {}
    froms: dict[str, dict[str, None]] = {}
    for name in TEMPLATES[target]:
        for line in _strip((_HERE / name).read_text(encoding="utf-8"), False)[0]:
            node = pyast.parse(line).body[0]
            if isinstance(node, pyast.ImportFrom):
                names = froms.setdefault(node.module or "", {})
                for alias in node.names:
                    names.setdefault(alias.name + (f" as {alias.asname}" if alias.asname else ""))
            else:
                plain.setdefault(line)
    merged = [f"from {module} import {', '.join(sorted(names))}" for module, names in froms.items()]
    return list(plain) + merged


def _strip(text: str, keep_imports: bool) -> tuple[list[str], str]:
    """(the top-level imports, the text without docstring, `__future__` and neuralc imports;
    without any top-level import unless `keep_imports`)."""
    tree = pyast.parse(text)
    drop: set[int] = set()
    imports: list[str] = []
    for index, node in enumerate(tree.body):
        doc = (
            index == 0
            and isinstance(node, pyast.Expr)
            and isinstance(node.value, pyast.Constant)
            and isinstance(node.value.value, str)
        )
        future = isinstance(node, pyast.ImportFrom) and node.module == "__future__"
        ours = isinstance(node, pyast.ImportFrom) and (node.module or "").startswith("neuralc.")
        plain = isinstance(node, pyast.Import | pyast.ImportFrom) and not (future or ours)
        if plain:
            imports.extend(pyast.unparse(node).splitlines())
        if doc or future or ours or (plain and not keep_imports):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines = [line for n, line in enumerate(text.splitlines(), 1) if n not in drop]
    return imports, "\n".join(lines).strip("\n") + "\n"


MAIN_DISPATCH = """\
if __name__ == "__main__":
    if "--data" in sys.argv[1:]:
        train_main(build_model, TRAIN_CONFIG)
    else:
        main()
"""
