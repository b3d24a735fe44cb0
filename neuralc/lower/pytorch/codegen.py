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

from neuralc.ir.core import Operation, Value, primary_loc
from neuralc.ir.types import TensorType
from neuralc.lower.pytorch.snippets import GLOBAL_NAMES

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


def tensor_text(t: TensorType) -> str:
    return f"{t.dtype}[{','.join(str(d) for d in t.shape)}]"


def docstring(text: str, pad: str) -> list[str]:
    if len(pad) + len(text) + 6 <= LINE_LENGTH:
        return [f'{pad}"""{text}"""']
    wrapped = textwrap.wrap(text, LINE_LENGTH - len(pad) - 3, break_long_words=False)
    return [f'{pad}"""{wrapped[0]}', *(pad + line for line in wrapped[1:]), f'{pad}"""']


def torch_dtype(t: TensorType) -> str:
    return {
        "f32": "float32",
        "f64": "float64",
        "f16": "float16",
        "bf16": "bfloat16",
        "i64": "int64",
        "i32": "int32",
        "i8": "int8",
        "bool": "bool",
    }[t.dtype]


def imports(text: str) -> str:
    body = text.split("@@IMPORTS@@", 1)[1]
    std = [name for name in ("argparse", "math") if re.search(rf"\b{name}\.", body)]
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
    """`ruff format` the generated text (unchanged when ruff is unavailable)."""
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
