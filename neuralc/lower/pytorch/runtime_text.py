"""The parts of every generated PyTorch module that do not depend on the network: device
placement, the runtime functions (`resolve_device`, `load_weights`, `build_model`, `predict`,
`capture_cuda_graph`, `main`) and the module-level names generated classes must not shadow.
`@@ROOT@@` stands for the network's class.
"""

from __future__ import annotations

from neuralc.lower.pytorch.snippets import SNIPPETS
from neuralc.lower.train_template import template_names

PLACE_SIMPLE = '''
    def place(self, device: str | None = None) -> @@ROOT@@:
        """Move the model to `device` (default: DEVICE); returns the model."""
        self.device = resolve_device(device or DEVICE, "the model")
        return self.to(self.device)
'''

PLACE_MIXED = '''
    def place(self, device: str | None = None) -> @@ROOT@@:
        """Move each layer to its device in PLACEMENT, or every layer to `device`; returns the
        model."""
        if device:
            self.device = resolve_device(device, "the model")
            self.to(self.device)
        for name, placed in PLACEMENT.items():
            target = self.device if device else resolve_device(placed, f"layer '{name}'")
            self.devices[name] = target
            if hasattr(self, name):
                getattr(self, name).to(target)
        if not device:
            self.device = self.devices[next(iter(PLACEMENT))]
        return self
'''

RUNTIME = '''
def resolve_device(name: str, what: str) -> torch.device:
    """A torch device for a DSL device name ("cpu", "cuda", "cuda:N", "gpu", "auto")."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "gpu":
        name = "cuda"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{what} is placed on {name} but this machine has no CUDA device; "
                "run with --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{what} is placed on {name} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); run with --device cpu"
            )
    return device


def load_weights(model: nn.Module, path: str) -> None:
    """Load neuralc's safetensors weight file: its keys are exactly the model's state_dict keys."""
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path), strict=True)


def build_model(weights_path: str | None = None, device: str | None = None) -> @@ROOT@@:
    """The model, with weights from `weights_path` (else WEIGHTS, else torch's initialization
    under SEED), on its devices (or all on `device`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = @@ROOT@@()
    if weights_path is None and WEIGHTS is not None:
        weights_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)
    if weights_path is not None:
        load_weights(model, weights_path)
    return model.place(device)


def predict(model: @@ROOT@@, inputs: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
    """Run the model in eval mode without gradients on numpy inputs (keyed by input name)."""
    if not isinstance(inputs, dict):
        inputs = {INPUT_NAMES[0]: inputs}
    tensors = [
        torch.as_tensor(np.asarray(inputs[name])).to(model.device, INPUT_DTYPES[name])
        for name in INPUT_NAMES
    ]
    model.eval()
    with torch.no_grad():
        return model(*tensors).float().cpu().numpy()


def capture_cuda_graph(model: nn.Module, *example_inputs: torch.Tensor, warmup: int = 3):
    """Capture the model's inference forward (eval mode, no gradients) in a CUDA graph for
    inputs of `example_inputs`' shapes, dtypes and devices; returns `forward(*inputs)`, which
    copies the inputs into the graph's static buffers, replays it and returns a clone of the
    output. Saves the per-kernel launch cost where the forward is launch-bound (small batches).
    The warm-up calls (on a side stream) also run Triton's autotuning before the capture."""
    tensors = [*example_inputs, *model.parameters(), *model.buffers()]
    devices = sorted({str(t.device) for t in tensors if t.device.type != "cuda"})
    if devices or not torch.cuda.is_available():
        raise RuntimeError(
            "capture_cuda_graph needs the model and its inputs on a CUDA device, not on "
            f"{', '.join(devices) or 'a machine without CUDA'}; build_model(device='cuda')"
        )
    static_inputs = [x.detach().clone() for x in example_inputs]
    model.eval()
    with torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                model(*static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = model(*static_inputs)

    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(static_inputs):
            raise TypeError(f"expected {len(static_inputs)} input(s), got {len(inputs)}")
        for buffer, x in zip(static_inputs, inputs, strict=True):
            if x.shape != buffer.shape:
                raise ValueError(
                    f"the graph was captured for inputs of shape {tuple(buffer.shape)}, "
                    f"got {tuple(x.shape)}"
                )
            buffer.copy_(x)
        graph.replay()
        return static_output.clone()

    return forward


def main(argv: list[str] | None = None) -> None:
    """`python model.py [--weights W] --input [NAME=]X.npy ... -o Y.npy [--device D]`; user
    errors print as `error: ...` and exit 1 (`predict_main`)."""
    predict_main(
        __doc__.splitlines()[0],
        TRAIN_CONFIG["inputs"],
        build_model,
        predict,
        f"{WEIGHTS} (beside this file)" if WEIGHTS else "torch's initialization under SEED",
        argv,
        epilog=f"To train the model: python {os.path.basename(sys.argv[0]) or 'model.py'} "
        "--data DATA.npz|FOLDER [options]; add --help after --data X for the training options.",
    )


if __name__ == "__main__":
    main()
'''.lstrip("\n")


# Module-level names of generated files: generated classes must not shadow them (the inlined
# training loop and command line included: a network named DataError replaced that class).
GLOBAL_NAMES = frozenset(
    {
        *SNIPPETS,
        *template_names("pytorch"),
        "INPUT_NAMES",
        "INPUT_DTYPES",
        "DEVICE",
        "PLACEMENT",
        "SEED",
        "WEIGHTS",
        "os",
        "resolve_device",
        "load_weights",
        "build_model",
        "predict",
        "capture_cuda_graph",
        "main",
        "annotations",
        "argparse",
        "math",
        "np",
        "torch",
        "F",
        "nn",
    }
)
