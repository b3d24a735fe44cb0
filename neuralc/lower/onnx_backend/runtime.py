"""Running an emitted `.onnx` file with ONNX Runtime.

Devices. `device` is what `neuralc predict` resolved: `"cpu"` runs on the CPU provider;
`"cuda"`, `"cuda:N"` or `"gpu"` need ONNX Runtime's CUDA provider (onnxruntime-gpu and a GPU);
`"auto"` (or empty) follows the placements recorded in the model (`neuralc.devices`): CUDA when
a layer asks for it and the provider is there. A model placed on a GPU, run where the CUDA
provider is missing, fails with a diagnostic naming the first such layer and suggesting
`--device cpu`; "auto" placements never fail.

Weights. The model embeds its initializers; a weights file given to `predict` is only checked
against them (by the digest stored at build time): a different file is a diagnostic asking for
a rebuild, never silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neuralc.diagnostics import CompileError, Diagnostic, SourceLocation

_GPU_PREFIXES = ("cuda", "gpu")


def _is_gpu(device: str | None) -> bool:
    return bool(device) and str(device).lower().startswith(_GPU_PREFIXES)


def _device_id(device: str) -> int:
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0


def _parse_loc(text: str | None) -> SourceLocation | None:
    if not text:
        return None
    file, _, rest = text.rpartition(":")
    path, _, line = file.rpartition(":")
    if not (line.isdigit() and rest.isdigit()):
        return None
    return SourceLocation(path, int(line), int(rest))


def _metadata(session: Any) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)


def providers_for(
    device: str | None, placements: dict[str, dict[str, Any]], available: list[str]
) -> list[Any]:
    """ONNX Runtime providers for `device` and the model's placements (see the module doc)."""
    has_cuda = "CUDAExecutionProvider" in available
    wanted: str | None = None
    if device and device.lower() != "auto":
        if not _is_gpu(device):
            return ["CPUExecutionProvider"]
        wanted = device
        culprit = None
    else:
        culprit = next(
            ((name, p) for name, p in placements.items() if _is_gpu(p.get("device"))), None
        )
        if culprit is not None:
            wanted = culprit[1]["device"]
        elif any(p.get("device") == "auto" for p in placements.values()) and has_cuda:
            wanted = "cuda"
    if wanted is None:
        return ["CPUExecutionProvider"]
    if not has_cuda:
        if culprit is None:
            raise CompileError(
                Diagnostic(
                    f"device '{wanted}' is not available: ONNX Runtime has no CUDA provider here",
                    None,
                    "error",
                    ("run on the CPU with --device cpu",),
                )
            )
        name, placement = culprit
        raise CompileError(
            Diagnostic(
                f"layer '{name}' is placed on '{wanted}', but ONNX Runtime has no CUDA provider "
                "on this machine",
                _parse_loc(placement.get("loc")),
                "error",
                (
                    "run it on the CPU with --device cpu (or install onnxruntime-gpu on a machine "
                    "with a GPU)",
                ),
            )
        )
    return [("CUDAExecutionProvider", {"device_id": _device_id(wanted)}), "CPUExecutionProvider"]


def session(artifact: Path, device: str | None = "cpu", options: Any = None) -> Any:
    import onnxruntime as ort

    probe = (
        ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        if not device or device.lower() == "auto"
        else None
    )
    placements = json.loads(_metadata(probe).get("neuralc.devices", "{}")) if probe else {}
    providers = providers_for(device, placements, ort.get_available_providers())
    if probe is not None and providers == ["CPUExecutionProvider"] and options is None:
        return probe
    return ort.InferenceSession(str(artifact), sess_options=options, providers=providers)


def _check_weights(sess: Any, weights: Path) -> None:
    from neuralc.lower.onnx_backend.emitter import weights_digest
    from neuralc.lower.weights import load_weights

    meta = _metadata(sess)
    digest = meta.get("neuralc.weights_sha256")
    if digest is None:
        return
    arrays = load_weights(weights)
    skipped = set(json.loads(meta.get("neuralc.weights_skipped", "[]")))
    keys = [key for key in arrays if key not in skipped]
    if weights_digest(arrays, keys) != digest:
        raise CompileError(
            Diagnostic(
                f"the model embeds weights that differ from '{weights}'",
                None,
                "error",
                ("an .onnx file carries its weights: rebuild it with --weights to use this file",),
            )
        )


def predict(
    artifact: Path, weights: Path | None, inputs: dict[str, np.ndarray], device: str
) -> np.ndarray:
    sess = session(Path(artifact), device)
    if weights is not None:
        _check_weights(sess, Path(weights))
    feeds = {}
    expected = sess.get_inputs()
    names = [i.name for i in expected]
    if len(expected) == 1 and len(inputs) == 1 and names[0] not in inputs:
        inputs = {names[0]: next(iter(inputs.values()))}
    for spec in expected:
        if spec.name not in inputs:
            raise CompileError(
                Diagnostic(
                    f"the model needs input '{spec.name}', but none was given",
                    None,
                    "error",
                    ("inputs given: " + (", ".join(inputs) or "none"),),
                )
            )
        value = np.asarray(inputs[spec.name])
        feeds[spec.name] = value.astype(
            np.int64 if "int64" in spec.type else np.float32, copy=False
        )
    return np.asarray(sess.run(None, feeds)[0])
