"""Text-level helpers of the PyTorch emitter: names, variables, statements with their source
comments, docstrings, conditional constructors, imports and formatting."""

from __future__ import annotations

import keyword
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from neuralc.ir.core import FusedLoc, Network, Operation, Value, primary_loc
from neuralc.ir.types import FRAMEWORK_DTYPES, TensorType
from neuralc.lower.pytorch.runtime_text import GLOBAL_NAMES

LINE_LENGTH = 100
# Names a forward's variables must not take.
RESERVED = {"self", "index", "inputs", "j", *GLOBAL_NAMES}


def quote(text: str) -> str:
    """A double-quoted Python string literal (the formatter's style, also without it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Vars:
    """Variable names of one forward: `x` for the value flowing down the chain, the layer's
    name for a value that must outlive the next assignment to `x`."""

    def __init__(self, taken: set[str], x_holder: Value | None = None) -> None:
        self.taken = set(taken) | RESERVED
        # The value currently held in `x` (its id), if any.
        self.x_holder: int | None = id(x_holder) if x_holder is not None else None

    def loop(self, base: str) -> str:
        """A loop variable: only live inside its loop, so it may repeat between loops."""
        name, n = base, 1
        while name in self.taken:
            name = f"{base}_{n}"
            n += 1
        return name

    def fresh(self, base: str) -> str:
        name = python_name(base)
        candidate, n = name, 1
        while candidate in self.taken:
            candidate = f"{name}_{n}"
            n += 1
        self.taken.add(candidate)
        return candidate


def python_name(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit():
        name = "v_" + name
    if keyword.iskeyword(name):
        name += "_"
    return name


def camel_case(name: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out and not out[0].isdigit() else "M" + out


def statement(lines: list[str], pad: str, text: str, op: Operation) -> None:
    """Append a statement with its `# model.neural:LINE` comment: trailing when the line stays
    short, else on the line above (so the formatter never splits a call around it)."""
    loc = primary_loc(op.loc)
    if loc is None:
        lines.append(pad + text)
        return
    comment = f"# {Path(loc.file).name}:{loc.line}"
    if len(pad) + len(text) + 2 + len(comment) <= LINE_LENGTH and "\n" not in text:
        lines.append(f"{pad}{text}  {comment}")
    else:
        lines.append(pad + comment)
        lines.append(pad + text)


def source_statement(lines: list[str], text: str, op: Operation) -> None:
    """`text` with the source lines of `op` (`# m.neural:4`, fused: `# m.neural:4,6`)."""
    locs = op.loc.locs if isinstance(op.loc, FusedLoc) else (op.loc,) if op.loc else ()
    by_file: dict[str, list[int]] = {}
    for loc in locs:
        lines_of = by_file.setdefault(Path(loc.file).name, [])
        if loc.line not in lines_of:
            lines_of.append(loc.line)
    comment = ", ".join(f"{f}:{','.join(map(str, ns))}" for f, ns in by_file.items())
    if not comment:
        lines.append(text)
    elif len(text) + len(comment) + 12 <= LINE_LENGTH:
        lines.append(f"{text}  # {comment}")
    else:
        lines += [f"# {comment}", text]


def tensor_text(t: TensorType) -> str:
    return f"{t.dtype}[{','.join(str(d) for d in t.shape)}]"


def docstring(text: str, pad: str) -> list[str]:
    if len(pad) + len(text) + 6 <= LINE_LENGTH:
        return [f'{pad}"""{text}"""']
    width = LINE_LENGTH - len(pad) - 3
    wrapped = textwrap.wrap(text, width, break_long_words=False)
    if len(wrapped) == 1:  # the formatter would join `"""text` and `"""` past the limit
        wrapped = textwrap.wrap(text, max(len(text) // 2 + 1, 20), break_long_words=False)
    return [f'{pad}"""{wrapped[0]}', *(pad + line for line in wrapped[1:]), f'{pad}"""']


def torch_dtype(t: TensorType) -> str:
    return FRAMEWORK_DTYPES[t.dtype]


def imports(text: str) -> str:
    body = text.split("@@IMPORTS@@", 1)[1]
    std = [name for name in ("argparse", "math", "os") if re.search(rf"\b{name}\.", body)]
    lines = ["from __future__ import annotations", ""]
    lines += [f"import {name}" for name in std]
    if lines:
        lines.append("")
    lines += ["import numpy as np", "import torch"]
    if re.search(r"\bF\.", body):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    return "\n".join(lines)


# Helpers ------------------------------------------------------------------------------------


def conditional(by_key: dict, inner: str = "") -> str:
    """`a if index == 0 else b`: choose an expression by `index` (keys are ints), or by
    `(index, inner)` (keys are pairs)."""
    groups: dict[str, list] = {}
    for key, expr in by_key.items():
        groups.setdefault(expr, []).append(int(key or 0) if not inner else key)
    # The most common expression is the default; on a tie, the one of the later copies.
    default = max(groups, key=lambda e: (len(groups[e]), max(groups[e])))
    subject = f"(index, {inner})" if inner else "index"
    parts = []
    for expr, keys in groups.items():
        if expr == default:
            continue
        cond = f"{subject} == {keys[0]}" if len(keys) == 1 else f"{subject} in {tuple(keys)}"
        parts.append(f"{expr} if {cond} else ")
    return "".join(parts) + default


def fill(call: str, module: str | None, operands: list[str]) -> str:
    fields = {f"x{i}": v for i, v in enumerate(operands)}
    fields["x"] = operands[0] if operands else ""
    fields["xs"] = ", ".join(operands)
    fields["m"] = module or ""
    return call.format(**fields)


def format_source(text: str) -> str:
    """`ruff format` the generated text (ruff is a dependency of neuralc; the text stays as
    generated, still valid Python, if its binary cannot be found or run)."""
    try:
        from ruff.__main__ import find_ruff_bin

        ruff: str | None = str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        beside = Path(sys.executable).with_name("ruff")
        ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        return text
    try:
        done = subprocess.run(
            [
                ruff,
                "format",
                "--isolated",
                "--line-length",
                "100",
                "--stdin-filename",
                "model.py",
                "-",
            ],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return text
    return done.stdout if done.returncode == 0 else text


# Training ------------------------------------------------------------------------------------

MAIN_BLOCK = 'if __name__ == "__main__":\n    main()\n'


def runtime_with_training(runtime: str, network: Network) -> str:
    """The runtime tail with the training loop (`neuralc.lower.train_*` templates) and a
    `__main__` that trains with `--data` and predicts otherwise: the module `build` writes is
    the one `neuralc run` trains."""
    from neuralc.lower.training import (
        MAIN_DISPATCH,
        config_literal,
        training_config,
        training_source,
    )

    head = runtime.removesuffix(MAIN_BLOCK)
    return (head + config_literal(training_config(network)) + "\n\n\n"
            + training_source("pytorch", imports=False) + "\n\n\n" + MAIN_DISPATCH)


def merge_imports(block: str, extra: list[str]) -> str:
    """`block` (an emitter's import block) with the `extra` import lines merged in, isort-style:
    standard library, then third party; plain imports before from-imports, each sorted; what
    follows the imports in `block` (a guarded try/except import) stays after them."""
    lines = block.splitlines()
    future = [line for line in lines if line.startswith("from __future__")]
    plain = [line for line in lines if line.startswith(("import ", "from "))
             and line not in future]
    first_other = next((i for i, line in enumerate(lines) if line.strip() and
                        not line.startswith(("import ", "from "))), len(lines))
    rest = lines[first_other:]
    merged = list(dict.fromkeys([*plain, *extra]))

    def module(line: str) -> str:
        return line.split()[1]

    def section(line: str) -> int:
        return 0 if module(line).split(".")[0] in sys.stdlib_module_names else 1

    out = [*future, ""]
    for group in (0, 1):
        members = [line for line in merged if section(line) == group]
        members.sort(key=lambda line: (line.startswith("from "), module(line).lower(), line))
        if members:
            out += [*members, ""]
    return "\n".join(out + rest).rstrip("\n")
