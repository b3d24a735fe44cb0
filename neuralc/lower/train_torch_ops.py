"""PyTorch pieces of neuralc's training loop: the optimizers (with Keras' update rules), mixed
precision, losses, metrics and checkpoints. `train_torch` runs the loop with them.

Standalone: torch, numpy, safetensors, and the standalone `train_core`; inlined into the emitted
PyTorch module by `neuralc.lower.training.training_source()`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuralc.lower.train_core import CHECKPOINT_FORMAT, TrainingError, TrainState, make_schedule

_EPS = 1e-7  # Keras' epsilon for clipping probabilities
_OPTIMIZERS: dict[str, tuple[str, dict[str, str]]] = {  # DSL name -> torch class, argument map
    "Adam": ("Adam", {"beta_1": "betas", "epsilon": "eps", "amsgrad": "amsgrad"}),
    "AdamW": (
        "AdamW",
        {"beta_1": "betas", "epsilon": "eps", "amsgrad": "amsgrad", "weight_decay": "weight_decay"},
    ),
    "RMSprop": (
        "RMSprop",
        {
            "rho": "alpha",
            "epsilon": "eps",
            "momentum": "momentum",
            "centered": "centered",
            "weight_decay": "weight_decay",
        },
    ),
    "Adagrad": (
        "Adagrad",
        {
            "initial_accumulator_value": "initial_accumulator_value",
            "epsilon": "eps",
            "weight_decay": "weight_decay",
        },
    ),
    "Adadelta": ("Adadelta", {"rho": "rho", "epsilon": "eps", "weight_decay": "weight_decay"}),
    "Adamax": ("Adamax", {"beta_1": "betas", "epsilon": "eps", "weight_decay": "weight_decay"}),
    "Nadam": ("NAdam", {"beta_1": "betas", "epsilon": "eps", "weight_decay": "weight_decay"}),
}


class KerasRMSprop(torch.optim.Optimizer):
    """Keras 3's RMSprop: epsilon inside the square root (torch adds it outside), decoupled
    weight decay, momentum on the scaled step."""

    def __init__(
        self,
        params: Any,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-7,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "rho": rho,
                "eps": eps,
                "momentum": momentum,
                "centered": centered,
                "weight_decay": weight_decay,
            },
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, rho, eps, mu = group["lr"], group["rho"], group["eps"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["velocity"] = torch.zeros_like(p)
                    st["average"] = torch.zeros_like(p)
                    st["momentum"] = torch.zeros_like(p)
                if group["weight_decay"]:
                    p.sub_(p * (group["weight_decay"] * lr))
                g, v = p.grad, st["velocity"]
                v.mul_(rho).addcmul_(g, g, value=1 - rho)
                denominator = v + eps
                if group["centered"]:
                    st["average"].mul_(rho).add_(g, alpha=1 - rho)
                    denominator = denominator - st["average"].square()
                increment = g * lr / denominator.sqrt()
                if mu > 0:
                    p.sub_(st["momentum"].mul_(mu).add_(increment))
                else:
                    p.sub_(increment)


class KerasSGD(torch.optim.Optimizer):
    """Keras 3's SGD: decoupled weight decay (`var -= lr·wd·var` first), then `m = μm − lr·g`,
    `var += m` (nesterov: `var += μm − lr·g`). torch's SGD couples the decay into the gradient
    and scales its momentum buffer by the current lr, which differ with momentum."""

    def __init__(
        self, params: Any, lr: float, momentum: float, nesterov: bool, weight_decay: float
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov}
        super().__init__(params, {**defaults, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.sub_(p * (group["weight_decay"] * lr))
                if not mu:
                    p.sub_(p.grad * lr)
                    continue
                m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                m.mul_(mu).sub_(p.grad * lr)
                p.add_(m * mu - p.grad * lr if group["nesterov"] else m)


def fold_recurrent_biases(model: nn.Module) -> None:
    """Keras' LSTM and SimpleRNN have one bias where torch has `bias_ih` and `bias_hh`, which
    enter only as their sum: trained separately, the sum moves by two updates per step (twice
    Keras' for SGD). Fold `bias_hh` into `bias_ih` and freeze it at zero (the same function,
    the weights Keras' export writes), so both backends train the same parameters. By name, so
    that -O2's functional modules are covered: `weight_hh` of (k·h, h) is an LSTM for k = 4, a
    SimpleRNN for k = 1; a GRU (k = 3) keeps both (Keras' reset_after GRU has both biases)."""
    for module in model.modules():
        own = module._parameters
        for name, hh in list(own.items()):
            suffix = name[len("bias_hh") :]
            ih, w = own.get("bias_ih" + suffix), own.get("weight_hh" + suffix)
            if not name.startswith("bias_hh") or hh is None or ih is None or w is None:
                continue
            if w.dim() != 2 or w.shape[0] // max(w.shape[1], 1) not in (1, 4):
                continue
            with torch.no_grad():
                ih.add_(hh)
                hh.zero_()
            hh.requires_grad_(False)


def keras_running_variance(model: nn.Module) -> list[Any]:
    """Keras' BatchNormalization moves its moving variance toward the batch's biased variance,
    torch's toward the unbiased one (n/(n-1) larger, n values per channel): hooks rescale each
    training-mode update of `running_var` to Keras' rule. Returns the hook handles."""
    handles: list[Any] = []
    for module in model.modules():
        var, momentum = getattr(module, "running_var", None), getattr(module, "momentum", None)
        if not isinstance(var, torch.Tensor) or not isinstance(momentum, float):
            continue
        before: dict[str, Any] = {}

        def pre(mod: nn.Module, args: Any, before: dict[str, Any] = before) -> None:
            if mod.training:
                before["n"] = args[0].numel() // mod.running_var.numel()
                before["keep"] = mod.running_var.detach() * (1.0 - mod.momentum)

        def post(mod: nn.Module, args: Any, out: Any, before: dict[str, Any] = before) -> None:
            n, keep = before.pop("n", 0), before.pop("keep", None)
            if keep is not None and n > 1:
                # .data: the batch-norm node saved running_var for backward (unused in
                # training mode), so an in-place update must not bump its version
                var = mod.running_var.data
                var.copy_(keep + (var - keep) * ((n - 1) / n))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


def make_optimizer(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The torch optimizer for `config["optimizer"]`, with Keras' update rules where they
    differ: Keras' Adam adds epsilon to sqrt(v) before bias correction (`train` sets torch's eps
    each step to match), its weight decay is decoupled (Adam with weight_decay is AdamW) and
    its RMSprop takes epsilon inside the square root (`KerasRMSprop`)."""
    spec = dict(config["optimizer"])
    name = spec["name"]
    if name == "Adam" and spec.get("weight_decay"):
        name = "AdamW"
    if name == "RMSprop":
        return KerasRMSprop(
            model.parameters(),
            make_schedule(spec["learning_rate"])(0),
            spec["rho"],
            spec["epsilon"],
            spec["momentum"],
            spec["centered"],
            spec.get("weight_decay") or 0.0,
        )
    if name == "SGD":
        return KerasSGD(
            model.parameters(),
            make_schedule(spec["learning_rate"])(0),
            spec.get("momentum") or 0.0,
            bool(spec.get("nesterov")),
            spec.get("weight_decay") or 0.0,
        )
    cls_name, mapping = _OPTIMIZERS[name]
    kwargs: dict[str, Any] = {"lr": make_schedule(spec["learning_rate"])(0)}
    for key, torch_key in mapping.items():
        if key == "beta_1":
            kwargs["betas"] = (spec["beta_1"], spec["beta_2"])
        elif key in spec and spec[key] is not None:
            kwargs[torch_key] = spec[key]
    return getattr(torch.optim, cls_name)(model.parameters(), **kwargs)


def precision_plan(device: torch.device, mixed: bool) -> tuple[torch.dtype | None, bool, str]:
    """(autocast dtype or None, whether to scale the loss, a label): bf16 autocast on CUDA,
    fp16 with loss scaling where bf16 is missing, float32 on the CPU."""
    if not mixed or device.type != "cuda":
        return None, False, "float32"
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False, "bfloat16 autocast"
    return torch.float16, True, "float16 autocast + loss scaling"


def loss_function(config: Mapping[str, Any], mode: str) -> Callable[..., torch.Tensor]:
    """`fn(z, y)`: z is what `config["output"]["loss_input"]` names (logits, log-probabilities,
    probabilities or values); reductions are means, as Keras' sum_over_batch_size."""
    loss, source = config["loss"], config["output"]["loss_input"]
    logits = source in ("logits", "output_logits")

    def log_probs(z: torch.Tensor) -> torch.Tensor:
        if logits:
            return F.log_softmax(z.float(), dim=-1)
        if source == "log_probs":
            return z.float()
        p = z.float() / z.float().sum(-1, keepdim=True)
        return torch.log(p.clamp(_EPS, 1 - _EPS))

    if mode == "sparse":
        if logits:
            return lambda z, y: F.cross_entropy(z.float().flatten(0, -2), y.flatten())
        return lambda z, y: F.nll_loss(log_probs(z).flatten(0, -2), y.flatten())
    if loss == "kl_divergence":

        def kl(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = log_probs(z).exp().clamp(_EPS, 1)
            t = y.clamp(_EPS, 1)
            return (t * torch.log(t / p)).sum(-1).mean()

        return kl
    if mode == "dense":
        return lambda z, y: -(y * log_probs(z)).sum(-1).mean()
    if mode == "binary":
        if logits:
            return lambda z, y: F.binary_cross_entropy_with_logits(z.float(), y)

        def bce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = z.float().clamp(_EPS, 1 - _EPS)
            return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()

        return bce
    if loss in ("mae", "mean_absolute_error"):
        return lambda z, y: F.l1_loss(z.float(), y)
    if loss == "huber":
        return lambda z, y: F.huber_loss(z.float(), y, delta=1.0)
    return lambda z, y: F.mse_loss(z.float(), y)


def metric_functions(config: Mapping[str, Any], mode: str) -> dict[str, Callable[..., Any]]:
    """name -> fn(out, y) -> (sum, count): summed on the device, divided once per epoch."""
    threshold = 0.0 if config["output"]["loss_input"] == "output_logits" else 0.5
    out: dict[str, Callable[..., Any]] = {}
    for name in config["metrics"]:
        if name == "accuracy" and mode == "sparse":
            out[name] = lambda z, y: ((z.argmax(-1) == y).sum(), y.numel())
        elif name == "accuracy" and mode == "dense":
            out[name] = lambda z, y: (
                (z.argmax(-1) == y.argmax(-1)).sum(),
                y.numel() // y.shape[-1],
            )
        elif name == "accuracy":
            out[name] = lambda z, y: (((z > threshold) == (y > 0.5)).sum(), y.numel())
        elif name == "mae":
            out[name] = lambda z, y: ((z.float() - y).abs().sum(), y.numel())
        elif name == "mse":
            out[name] = lambda z, y: ((z.float() - y).square().sum(), y.numel())
    return out


# Checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    best: Mapping[str, torch.Tensor] | None = None,
    scaler: Any = None,
) -> None:
    """Weights, optimizer state, best weights, torch's RNG and the loop state in one
    safetensors file (written to a temporary file, then renamed)."""
    from safetensors.torch import save_file

    tensors = {
        f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
    }
    opt = optimizer.state_dict()
    plain: dict[str, Any] = {}
    for index, entry in opt["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                plain[f"{index}.{key}"] = value
    for key, value in (best or {}).items():
        tensors[f"best.{key}"] = value.detach().cpu().contiguous().clone()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "backend": "pytorch",
        "state": state.to_json(),
        "param_groups": json.dumps(opt["param_groups"]),
        "optimizer_plain": json.dumps(plain),
        "scaler": json.dumps(scaler.state_dict() if scaler is not None else None),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(
    path: str, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any = None
) -> tuple[TrainState, dict[str, torch.Tensor] | None]:
    from safetensors import safe_open

    if not os.path.exists(path):
        raise TrainingError(f"cannot resume: no checkpoint at '{path}'")
    with safe_open(path, framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("backend") != "pytorch":
            raise TrainingError(
                f"'{path}' is not a PyTorch checkpoint of neuralc "
                f"(format {meta.get('format')!r}, backend "
                f"{meta.get('backend')!r})"
            )
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            index, name = key[10:].split(".", 1)
            opt_state.setdefault(int(index), {})[name] = value
    for key, value in json.loads(meta["optimizer_plain"]).items():
        index, name = key.split(".", 1)
        opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(
        {"state": opt_state, "param_groups": json.loads(meta["param_groups"])}
    )
    if scaler is not None and json.loads(meta.get("scaler", "null")):
        scaler.load_state_dict(json.loads(meta["scaler"]))
    torch.set_rng_state(tensors["rng.torch"])
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    return TrainState.from_json(meta["state"]), best
