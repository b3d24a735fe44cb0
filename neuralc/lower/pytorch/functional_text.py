"""The text of the functional (tensor/kernel-stage) PyTorch module around its forward.

`FunctionalEmitter` (`functional.py`) decides the forward's statements, the weights and where
everything runs, and hands them over as a `FunctionalModule`; this module assembles the file:
its docstring, imports (neuralc's fused Triton kernels with a pure-PyTorch fallback), constants
(`INPUT_NAMES`, `DEVICE`, `DEVICES`/`PLACEMENT`, `SEED`, `AUTOTUNE`, the weight tables), the
helper snippets, the model class and the runtime functions. It is separate from the emitter as
the nn path's `module_text` is from its emitter: the layout of the file changes independently of
how IR ops become statements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuralc.ir.core import Network
from neuralc.lower.pytorch.codegen import (
    docstring,
    merge_imports,
    quote,
    runtime_with_training,
    torch_dtype,
)
from neuralc.lower.pytorch.functional_snippets import (
    FUSED_IMPORTS,
    PLACE_MIXED,
    functional_snippets,
)
from neuralc.lower.pytorch.functional_weights import shape_text
from neuralc.lower.pytorch.module_text import file_docstring, root_doc
from neuralc.lower.pytorch.runtime_text import PLACE_SIMPLE, RUNTIME
from neuralc.lower.pytorch.tensor_ops import literal
from neuralc.lower.target import BuildOptions, weights_lines
from neuralc.lower.training import training_imports


@dataclass
class FunctionalModule:
    """What the emitter decided, for the text around it."""

    network: Network
    options: BuildOptions
    root: str  # the generated nn.Module's class name
    helpers: set[str]  # the helper snippets the forward and __init__ call
    args: list[str]  # the forward's parameters after self
    body: list[str]  # the forward's statements
    init: list[str]  # __init__'s statements after super().__init__()
    params: dict[str, tuple]  # PARAMETERS: key -> (shape, initial value)
    buffers: dict[str, tuple]  # BUFFERS, likewise
    device: str  # DEVICE: where the model goes (its input, when placement is mixed)
    home: str  # the input's canonical device, listed in DEVICES when placement is mixed
    groups: dict[str, str]  # PLACEMENT: weight prefix -> device; empty on one device


def module_text(m: FunctionalModule) -> str:
    """The whole generated file (before formatting)."""
    net, options = m.network, m.options
    fused = calls_fused_kernels(m.helpers, options.kernels)
    stage = "kernel" if any(op.dialect == "kernel" for op in net.body.ops) else "tensor"
    lines = file_docstring(
        net, options,
        f"Compiled{f' at -O{options.opt_level}' if options.opt_level else ''} to the {stage} "
        "stage: the forward is one functional call per IR op.",
    )
    names = ", ".join(quote(v.name) for v in net.inputs)
    lines.append(
        f"INPUT_NAMES = ({names},)" if len(net.inputs) == 1 else f"INPUT_NAMES = ({names})"
    )
    dtypes = ", ".join(f"{quote(v.name)}: torch.{torch_dtype(v.type)}" for v in net.inputs)
    lines.append(f"INPUT_DTYPES = {{{dtypes}}}")
    lines.append(f"DEVICE = {quote(m.device)}")
    if m.groups:
        used = sorted(
            {
                m.home,
                *m.groups.values(),
                *re.findall(r'self\.devices\["([^"]+)"\]', "\n".join(m.body)),
            }
        )
        lines.append(f"DEVICES = {tuple(used)!r}".replace("'", '"'))
        lines.append("# Where each weight lives; the forward moves activations between them.")
        lines.append("PLACEMENT: dict[str, str] = {")
        lines += [f"    {quote(k)}: {quote(v)}," for k, v in m.groups.items()]
        lines.append("}")
    lines.append(f"SEED = {int(options.seed)}")
    lines += weights_lines(options)
    if fused:
        autotune = net.attrs.get("autotune") is True
        lines.append("# The forward's Triton kernels autotune (-O3) or launch each one's first")
        lines.append("# configuration (-O2: no search on the first call). Backward kernels run")
        lines.append("# outside the forward's block and autotune at every level.")
        lines.append("# NEURALC_TRITON_AUTOTUNE=0/1 overrides both.")
        lines.append(f"AUTOTUNE = {autotune}")
    for name, table, what in (
        ("PARAMETERS", m.params, "parameters"),
        ("BUFFERS", m.buffers, "buffers"),
    ):
        if not table:
            continue
        lines.append(
            f"# The weight file's {what}: key -> (shape, initial value: U(-b, b) "
            "for a number b)."
        )
        lines.append(f"{name}: dict[str, tuple[tuple[int, ...], float | str]] = {{")
        lines += [
            f"    {quote(k)}: ({shape_text(s)}, {literal(i)})," for k, (s, i) in table.items()
        ]
        lines.append("}")
    lines += ["", ""]
    for snippet in functional_snippets(m.helpers, options.kernels):
        lines.append(snippet.source)
        lines.append("")
    lines += _class_text(m, fused)
    lines.append("")
    lines.append(runtime_with_training(RUNTIME.replace("@@ROOT@@", m.root), net))
    text = "\n".join(lines)
    return text.replace("@@IMPORTS@@",
                        merge_imports(_imports(text, options.kernels, fused),
                                      training_imports("pytorch")))


def _class_text(m: FunctionalModule, fused: bool) -> list[str]:
    mixed = bool(m.groups)
    out = [
        f"class {m.root}(nn.Module):",
        *docstring(root_doc(m.network), "    "),
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    out += [f"        {line}" for line in m.init]
    if mixed:
        out.append("        self.devices: dict[str, torch.device] = {}")
    out.append('        self.device = torch.device("cpu")')
    signature = ", ".join(f"{a}: torch.Tensor" for a in m.args)
    out += ["", f"    def forward(self, {signature}) -> torch.Tensor:"]
    pad = "        "
    precision = m.network.attrs.get("precision")
    if precision in ("bf16", "f16"):
        dtype = "bfloat16" if precision == "bf16" else "float16"
        out.append(f"{pad}# {precision} autocast on CUDA (-O3); float32 on the CPU.")
        out.append(
            f'{pad}with torch.autocast("cuda", dtype=torch.{dtype}, '
            "enabled=torch.cuda.is_available()):"
        )
        pad += "    "
    if fused:
        out.append(f"{pad}with kernel_autotuning(AUTOTUNE):")
        pad += "    "
    out += [f"{pad}{line}" for line in m.body]
    out.append("")
    out += (PLACE_MIXED if mixed else PLACE_SIMPLE).replace("@@ROOT@@", m.root).splitlines()
    return out


def _imports(text: str, kernels: str, fused_calls: bool) -> str:
    body = text.split("@@IMPORTS@@", 1)[1]
    # `contextlib.nullcontext` stands in for the kernels' autotuning switch without neuralc.
    wanted = body + ("contextlib." if fused_calls else "")
    std = [n for n in ("argparse", "base64", "contextlib", "math", "os")
           if re.search(rf"\b{n}\.", wanted)]
    lines = ["from __future__ import annotations", ""]
    lines += [f"import {n}" for n in std]
    lines += ["", "import numpy as np", "import torch"]
    if re.search(r"\bF\.", body):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    fused = [
        (name, alias)
        for name, alias in FUSED_IMPORTS.values()
        if re.search(rf"\b{alias}\(", body)
    ]
    if fused and kernels == "auto":
        lines += ["", "try:  # neuralc's fused Triton kernels, used on CUDA tensors"]
        names = sorted([*fused, ("autotuning", "kernel_autotuning")])
        lines += [f"    from neuralc.kernels import {n} as {a}" for n, a in names]
        lines.append("except ImportError:  # without neuralc, the PyTorch composites run")
        lines.append("    " + " = ".join(a for _, a in sorted(fused)) + " = None")
        lines.append("    kernel_autotuning = contextlib.nullcontext")
    return "\n".join(lines)


def calls_fused_kernels(helpers: set[str], kernels: str) -> bool:
    """Whether the module calls neuralc's Triton kernels (through its helper snippets)."""
    if kernels != "auto":
        return False
    aliases = [alias for _, alias in FUSED_IMPORTS.values()]
    sources = [s.source for s in functional_snippets(helpers, kernels)]
    return any(re.search(rf"\b{alias}\(", text) for alias in aliases for text in sources)
