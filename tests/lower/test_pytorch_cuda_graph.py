"""`capture_cuda_graph` in emitted PyTorch modules: present at -O0 and -O2, a clear error off
CUDA, and (on a GPU) a captured forward that equals the eager one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuralc.cli import main
from neuralc.lower.pytorch import import_artifact

MODEL = """network Tiny {
  input: (16, 32)
  layers:
    TransformerEncoder(num_heads=2, d_model=32, dff=64) * 2
    GlobalAveragePooling1D()
    Output(4, activation="softmax")
}
"""


def build(tmp_path: Path, level: str, *extra: str) -> object:
    source = tmp_path / "tiny.neural"
    source.write_text(MODEL)
    out = tmp_path / f"tiny_o{level}{'_'.join(extra)}.py"
    assert main(["build", str(source), "--target", "pytorch", "-O", level, *extra, "-o", str(out)]) == 0
    return import_artifact(out)


@pytest.mark.parametrize("level", ["0", "2"])
def test_capture_exists_and_refuses_cpu(tmp_path: Path, level: str) -> None:
    module = build(tmp_path, level)
    model = module.build_model(device="cpu")  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="capture_cuda_graph needs .* CUDA device"):
        module.capture_cuda_graph(model, torch.zeros(2, 16, 32))  # type: ignore[attr-defined]


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("level", "kernels", "dtype"),
    [("0", "auto", torch.float32), ("2", "auto", torch.float32), ("2", "auto", torch.bfloat16),
     ("2", "torch", torch.bfloat16)],
)
def test_captured_forward_matches_eager(
    tmp_path: Path, level: str, kernels: str, dtype: torch.dtype
) -> None:
    extra = ("--kernels", kernels) if level == "2" else ()
    module = build(tmp_path, level, *extra)
    model = module.build_model(device="cuda").to(dtype).eval()  # type: ignore[attr-defined]
    generator = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, 16, 32, generator=generator).to("cuda", dtype) for _ in range(3)]
    forward = module.capture_cuda_graph(model, xs[0])  # type: ignore[attr-defined]
    tol = 1e-4 if dtype == torch.float32 else 2e-2  # same kernels; cuBLAS may pick others
    with torch.no_grad():
        for x in xs:  # replays with new inputs, not only the captured ones
            captured, eager = forward(x), model(x)
            torch.testing.assert_close(captured, eager, rtol=0, atol=tol)
    first = forward(xs[0])
    assert forward(xs[1]).data_ptr() != first.data_ptr()  # outputs are clones
    with pytest.raises(ValueError, match="captured for inputs of shape"):
        forward(torch.zeros(2, 16, 32, device="cuda", dtype=dtype))
