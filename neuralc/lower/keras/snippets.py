"""The code of an emitted Keras module that does not depend on the network: the parts every
module has (weight plumbing, device selection, `load_weights`, `run`, `main`), and the helpers it
contains only when one of its layers needs them (`SNIPPETS`).

Each helper snippet is plain Python source (the emitted file is formatted by ruff afterwards)
with the names it needs: other snippets (`needs`) and imports (`imports`). The emitter collects
the snippets its lowerings ask for, adds their dependencies, and writes them in the order of
`SNIPPETS` (dependencies first).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Snippet:
    name: str
    code: str
    needs: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()


def _code(text: str) -> str:
    return dedent(text).strip("\n")


_LOAD_DENSE = Snippet("load_dense", _code('''
    def load_dense(layer: layers.Dense, take: Take) -> None:
        """nn.Linear: kernel = weight.T (torch stores [out, in])."""
        arrays = [take("weight").T]
        if layer.use_bias:
            arrays.append(take("bias"))
        layer.set_weights(arrays)
'''))

_LOAD_CONV = Snippet("load_conv", _code('''
    def load_conv(layer: layers.Layer, take: Take) -> None:
        """nn.Conv1d/Conv2d weight [out, in, *k] -> kernel [*k, in, out]; nn.ConvTranspose2d
        weight [in, out, kh, kw] -> kernel [kh, kw, out, in]: the same axis move."""
        arrays = [np.moveaxis(take("weight"), (0, 1), (-1, -2))]
        if layer.use_bias:
            arrays.append(take("bias"))
        layer.set_weights(arrays)
'''))

_LOAD_BATCH_NORM = Snippet("load_batch_norm", _code('''
    def load_batch_norm(layer: layers.BatchNormalization, take: Take) -> None:
        """nn.BatchNorm: weight (gamma), bias (beta), running_mean, running_var."""
        arrays = []
        if layer.scale:
            arrays.append(take("weight"))
        if layer.center:
            arrays.append(take("bias"))
        arrays += [take("running_mean"), take("running_var")]
        take("num_batches_tracked")  # torch's training step counter: Keras has no such variable
        layer.set_weights(arrays)
'''))

_LOAD_LAYER_NORM = Snippet("load_layer_norm", _code('''
    def load_layer_norm(layer: layers.LayerNormalization, take: Take) -> None:
        """nn.LayerNorm: weight (gamma), bias (beta)."""
        arrays = []
        if layer.scale:
            arrays.append(take("weight"))
        if layer.center:
            arrays.append(take("bias"))
        layer.set_weights(arrays)
'''))

_LOAD_EMBEDDING = Snippet("load_embedding", _code('''
    def load_embedding(layer: layers.Embedding, take: Take) -> None:
        """nn.Embedding: the same [input_dim, output_dim] table."""
        layer.set_weights([take("weight")])
'''))

_LOAD_MHA = Snippet("load_multi_head_attention", _code('''
    def load_multi_head_attention(layer: layers.MultiHeadAttention, take: Take) -> None:
        """Stored in Keras' own layout: query/key/value kernels [d, heads, dim], biases
        [heads, dim], attention_output kernel [heads, dim, out], bias [out]."""
        parts = ("kernel", "bias") if layer.get_config()["use_bias"] else ("kernel",)
        names = ("query", "key", "value", "attention_output")
        layer.set_weights([take(f"{name}.{part}") for name in names for part in parts])
'''))

_LOAD_RNN = Snippet("load_rnn", _code('''
    def load_rnn(layer: layers.Layer, take: Take) -> None:
        """nn.LSTM / nn.RNN: kernel = weight_ih.T, recurrent_kernel = weight_hh.T, and Keras'
        single bias = bias_ih + bias_hh. LSTM gates keep their order (i, f, g/c, o)."""
        arrays = [take("weight_ih_l0").T, take("weight_hh_l0").T]
        if layer.use_bias:
            arrays.append(take("bias_ih_l0") + take("bias_hh_l0"))
        layer.set_weights(arrays)
'''))

_LOAD_GRU = Snippet("load_gru", _code('''
    def load_gru(layer: layers.GRU, take: Take) -> None:
        """nn.GRU (gates r, z, n) -> GRU(reset_after=True) (gates z, r, h); Keras keeps the
        input and recurrent biases as the two rows of one (2, 3 * units) bias."""

        def gates(array: np.ndarray) -> np.ndarray:
            r, z, n = np.split(array, 3, axis=0)
            return np.concatenate([z, r, n], axis=0)

        arrays = [gates(take("weight_ih_l0")).T, gates(take("weight_hh_l0")).T]
        if layer.use_bias:
            arrays.append(np.stack([gates(take("bias_ih_l0")), gates(take("bias_hh_l0"))]))
        layer.set_weights(arrays)
'''))

_TORCH_MHA = Snippet("TorchMultiheadAttention", _code('''
    class TorchMultiheadAttention(layers.Layer):
        """torch.nn.MultiheadAttention(d_model, num_heads, batch_first=True) at inference.

        The query, key and value projections are the three row blocks of torch's packed
        `in_proj_weight`; every head attends with softmax(q k^T / sqrt(head_dim)) over the memory
        (the query itself for self-attention); `causal=True` lets position i see positions <= i.
        """

        def __init__(self, num_heads: int, d_model: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.num_heads = num_heads
            self.d_model = d_model
            self.head_dim = d_model // num_heads
            self.query = layers.Dense(d_model, name="query")
            self.key = layers.Dense(d_model, name="key")
            self.value = layers.Dense(d_model, name="value")
            self.out_proj = layers.Dense(d_model, name="out_proj")

        def build(self, query_shape: tuple, memory_shape: tuple) -> None:
            self.query.build(query_shape)
            self.key.build(memory_shape)
            self.value.build(memory_shape)
            self.out_proj.build(query_shape)

        def call(self, query: Any, memory: Any, causal: bool = False) -> Any:
            q = self.split_heads(self.query(query))
            k = self.split_heads(self.key(memory))
            v = self.split_heads(self.value(memory))
            scores = ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
            if causal:
                positions = ops.arange(ops.shape(query)[1])
                visible = positions[None, :] <= positions[:, None]
                scores = ops.where(visible, scores, float("-inf"))
            attention = ops.softmax(scores, axis=-1)
            heads = ops.einsum("bhqk,bkhd->bqhd", attention, v)
            return self.out_proj(ops.reshape(heads, (-1, ops.shape(heads)[1], self.d_model)))

        def split_heads(self, x: Any) -> Any:
            return ops.reshape(x, (-1, ops.shape(x)[1], self.num_heads, self.head_dim))

        def load_torch(self, take: Take) -> None:
            weight, bias = take("in_proj_weight"), take("in_proj_bias")
            d = self.d_model
            for i, dense in enumerate((self.query, self.key, self.value)):
                dense.set_weights([weight[i * d : (i + 1) * d].T, bias[i * d : (i + 1) * d]])
            load_dense(self.out_proj, prefixed(take, "out_proj."))
'''), needs=("load_dense",), imports=("import math", "from typing import Any"))

_TRANSFORMER = Snippet("TransformerLayer", _code('''
    class TransformerLayer(layers.Layer):
        """A Transformer layer computed as PyTorch computes it at inference (dropout is off).

        - `TransformerLayer(...)` is torch.nn.TransformerEncoderLayer(batch_first=True);
        - `causal=True` masks the self-attention causally (a GPT block);
        - `cross_attention=True` is torch.nn.TransformerDecoderLayer(batch_first=True) with a
          causal `tgt_mask`: `layer(x, memory)` also attends to the encoder's output `memory`.
        Post-norm, `x = norm(x + sublayer(x))`, unless `norm_first`: `x = x + sublayer(norm(x))`.
        Sublayers carry torch's names, so `load_torch` reads the weight file's keys as they are.
        """

        def __init__(
            self,
            num_heads: int,
            d_model: int,
            dff: int,
            activation: str = "relu",
            layer_norm_eps: float = 1e-5,
            norm_first: bool = False,
            causal: bool = False,
            cross_attention: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.norm_first = norm_first
            self.causal = causal
            self.self_attn = TorchMultiheadAttention(num_heads, d_model, name="self_attn")
            self.multihead_attn = (
                TorchMultiheadAttention(num_heads, d_model, name="multihead_attn")
                if cross_attention
                else None
            )
            # Keras' "gelu" is the exact (erf) GELU, as torch's.
            self.linear1 = layers.Dense(dff, activation=activation, name="linear1")
            self.linear2 = layers.Dense(d_model, name="linear2")
            self.norms = [
                layers.LayerNormalization(epsilon=layer_norm_eps, name=f"norm{i}")
                for i in range(1, 4 if cross_attention else 3)
            ]

        def build(self, x_shape: tuple, memory_shape: tuple | None = None) -> None:
            self.self_attn.build(x_shape, x_shape)
            if self.multihead_attn is not None:
                self.multihead_attn.build(x_shape, memory_shape)
            self.linear1.build(x_shape)
            self.linear2.build((*x_shape[:-1], self.linear1.units))
            for norm in self.norms:
                norm.build(x_shape)

        def call(self, x: Any, memory: Any = None) -> Any:
            sublayers = [lambda h: self.self_attn(h, h, causal=self.causal)]
            if self.multihead_attn is not None:
                sublayers.append(lambda h: self.multihead_attn(h, memory))
            sublayers.append(lambda h: self.linear2(self.linear1(h)))
            for sublayer, norm in zip(sublayers, self.norms, strict=True):
                x = x + sublayer(norm(x)) if self.norm_first else norm(x + sublayer(x))
            return x

        def load_torch(self, take: Take) -> None:
            self.self_attn.load_torch(prefixed(take, "self_attn."))
            if self.multihead_attn is not None:
                self.multihead_attn.load_torch(prefixed(take, "multihead_attn."))
            load_dense(self.linear1, prefixed(take, "linear1."))
            load_dense(self.linear2, prefixed(take, "linear2."))
            for norm in self.norms:
                load_layer_norm(norm, prefixed(take, f"{norm.name}."))
'''), needs=("TorchMultiheadAttention", "load_dense", "load_layer_norm"),
    imports=("from typing import Any",))



# The parts every module has ----------------------------------------------------------------

WEIGHT_PLUMBING = '''\
Take = Callable[[str], np.ndarray]  # one layer's weights: weight name -> array (PyTorch layout)


def prefixed(take: Take, prefix: str) -> Take:
    """A sublayer's weights: `prefixed(take, "linear1.")("weight")` reads `linear1.weight`."""
    return lambda name: take(prefix + name)'''

DEVICES = '''\
class DeviceError(RuntimeError):
    """The model, or one of its layers, is placed on a GPU that TensorFlow does not see."""

    def __init__(self, what: str, device: str, line: int, column: int, gpus: int) -> None:
        self.what, self.device, self.line, self.column = what, device, line, column
        self.problem = f"{what} is placed on {device}, but TensorFlow sees {gpus} GPU(s)"
        where = f"{SOURCE}:{line}: " if line else ""
        super().__init__(f"{where}{self.problem}; run with --device cpu")


def select_device(device: str | None = None) -> str:
    """The TensorFlow device that runs the model. `device` ("cpu", "cuda:1", ...) overrides
    the DSL's placement; None, "" or "auto" keeps it."""
    if device == "cpu":
        return "/CPU:0"
    gpus = len(tf.config.list_physical_devices("GPU"))
    wanted = {f"layer '{name}'": placed for name, placed in PLACEMENT.items()}
    if device not in (None, "", "auto"):
        wanted = {"the model": (device, 0, 0)}
    chosen = None
    for what, (where, line, column) in wanted.items():
        index = int(where.partition(":")[2] or 0)
        if index >= gpus:
            raise DeviceError(what, where, line, column, gpus)
        chosen = chosen or f"/GPU:{index}"
    if chosen is None and not gpus:
        return "/CPU:0"
    tf.config.experimental.enable_tensor_float_32_execution(False)  # float32 means float32
    return chosen or "/GPU:0"'''

LOAD_WEIGHTS = '''\
def load_weights(model: keras.Model, path: str) -> None:
    """Assign every variable from neuralc's weight file: keys `<layer name>.<weight name>`,
    PyTorch names and layouts, converted per layer class (CONVERTERS). Every key of the file
    is used exactly once."""
    arrays = load_file(path)
    unused = set(arrays)

    def weights_of(layer: str) -> Take:
        def take(name: str) -> np.ndarray:
            key = f"{layer}.{name}"
            if key not in unused:
                problem = "is read twice" if key in arrays else "is missing"
                raise KeyError(f"{path}: weight '{key}' {problem}")
            unused.remove(key)
            return arrays[key]

        return take

    for layer in model.layers:
        if layer.weights:
            try:
                CONVERTERS[type(layer)](layer, weights_of(layer.name))
            except ValueError as exc:  # Keras' shape check names neither the file nor the key
                raise ValueError(f"{path}: layer '{layer.name}': {exc}") from None
    if unused:
        raise ValueError(f"{path}: weights no layer uses: {', '.join(sorted(unused))}")'''

RUN = '''\
INPUTS = {@INPUTS@}  # the model's inputs in order: name -> dtype
# Each input's name, dtype and shape without the batch (None: a dynamic size), for main().
INPUT_SPECS: list[dict[str, Any]] = @INPUT_SPECS@
SEED = @SEED@  # Keras' initializers are seeded with it when no weight file is given
@WEIGHTS@


def load_model(
    weights_path: str | None = None, device: str | None = None
) -> tuple[keras.Model, str]:
    """The model, built with the weight file (if given, else WEIGHTS) on its TensorFlow
    device, and that device."""
    if weights_path is None and WEIGHTS is not None:
        weights_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)
    where = select_device(device)
    with tf.device(where):
        if weights_path is None:
            keras.utils.set_random_seed(SEED)
        return build_model(weights_path), where


def predict(loaded: tuple[keras.Model, str], inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The output of `load_model()`'s model at inference."""
    model, where = loaded
    with tf.device(where):
        args = [np.asarray(inputs[name], dtype=dtype) for name, dtype in INPUTS.items()]
        outputs = model(args if len(args) > 1 else args[0], training=False)
    return keras.ops.convert_to_numpy(outputs)


def run(
    inputs: dict[str, np.ndarray], weights_path: str | None = None, device: str | None = None
) -> np.ndarray:
    """Build the model (with the weight file, if given, else WEIGHTS) and compute its output
    at inference."""
    return predict(load_model(weights_path, device), inputs)'''

MAIN = '''\
def main(argv: list[str] | None = None) -> None:
    """`python model.py [--weights W] --input [NAME=]X.npy ... -o Y.npy [--device D]`; user
    errors print as `error: ...` and exit 1 (`predict_main`)."""
    predict_main(
        "Run the model on .npy inputs (inference).",
        INPUT_SPECS,
        load_model,
        predict,
        f"{WEIGHTS} (beside this file)" if WEIGHTS else "Keras' initialization under SEED",
        argv,
    )


if __name__ == "__main__":
    main()'''


# Helpers -- dependencies first; the emitted file follows this order.
SNIPPETS: dict[str, Snippet] = {s.name: s for s in (
    _LOAD_DENSE, _LOAD_CONV, _LOAD_BATCH_NORM, _LOAD_LAYER_NORM, _LOAD_EMBEDDING, _LOAD_MHA,
    _LOAD_RNN, _LOAD_GRU, _TORCH_MHA, _TRANSFORMER,
)}


def closure(names: set[str]) -> list[Snippet]:
    """The snippets `names` need, dependencies included, in `SNIPPETS` order."""
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(SNIPPETS[name].needs)
    return [s for s in SNIPPETS.values() if s.name in wanted]
