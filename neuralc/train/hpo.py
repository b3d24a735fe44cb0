"""`neuralc tune`'s engine: an Optuna study over a program's `HPO(...)` expressions.

Each trial asks Optuna for every hyperparameter (`space.collect`), builds the IR for that
assignment (`build_module(program, trial)`, continuous values included), trains the network
through its built artifact (`runner.run_training`) and reports the monitored loss per epoch, so
that the `MedianPruner` stops trials that fall behind. A combination that does not build
(heads that do not divide the width) or that diverges is pruned, with the reason kept in the
trial's user attributes. The study minimizes the best monitored loss (`val_loss` when there is
validation data, else `train_loss`).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralc.diagnostics import CompileError, SourceLocation, error
from neuralc.frontend import ast
from neuralc.ir.core import Network, primary_loc
from neuralc.ir.types import Attr
from neuralc.train.space import Hyperparameter, collect, resolve_source

SAMPLERS = {"bayesian": "tpe", "tpe": "tpe", "random": "random", "grid": "grid"}


@dataclass
class TuneSettings:
    target: str = "pytorch"
    trials: int | None = None  # default: train { num_trials }
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    network: str | None = None
    seed: int | None = None
    device: str | None = None
    opt_level: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)  # train settings (epochs, ...)
    verbose: bool = True
    work_dir: Path = Path(".")


@dataclass
class TuneResult:
    study: Any
    space: list[Hyperparameter]
    best: dict[SourceLocation, Attr]
    resolved: str
    method: str


class _Objective:
    def __init__(
        self,
        program: ast.Program,
        space: list[Hyperparameter],
        settings: TuneSettings,
        data: Callable[[dict[str, Any]], Any],
        grid: bool,
    ) -> None:
        self.program, self.space, self.settings = program, space, settings
        self.data, self.grid = data, grid

    def __call__(self, trial: Any) -> float:
        import optuna

        from neuralc.train.runner import TrainJob, run_training

        values = {hp.loc: hp.suggest(trial, self.grid) for hp in self.space}
        try:
            network = build_network(self.program, values, self.settings.network)
            config = trial_config(network, self.settings)
            prepared = self.data(config)
        except CompileError as exc:
            _record_failure(trial, exc)
            raise optuna.TrialPruned(exc.diagnostics[0].message) from None

        def report(epoch: int, logs: dict[str, float]) -> None:
            monitor = "val_loss" if "val_loss" in logs else "train_loss"
            trial.report(float(logs[monitor]), epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"{monitor} {logs[monitor]:.4g} at epoch {epoch}")

        folder = Path(tempfile.mkdtemp(prefix=f"trial{trial.number}-", dir=self.settings.work_dir))
        try:
            job = TrainJob(
                network,
                config,
                self.program.path,
                self.settings.target,
                folder,
                seed=int(config["train"]["seed"]),
                opt_level=self.settings.opt_level,
                device=self.settings.device,
                verbose=False,
                callbacks=(report,),
            )
            try:
                record = run_training(job, prepared).record
            except CompileError as exc:
                _record_failure(trial, exc)
                raise optuna.TrialPruned(exc.diagnostics[0].message) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if self.settings.target == "tensorflow":
                import keras

                keras.backend.clear_session()
        trial.set_user_attr("epochs", record["epochs"])
        best = record.get("best")
        return float(best) if best is not None and math.isfinite(best) else math.inf


def build_network(
    program: ast.Program, values: Mapping[SourceLocation, Attr], name: str | None
) -> Network:
    from neuralc.commands.build import select_network
    from neuralc.frontend.irgen import build_module
    from neuralc.ir.verifier import verify_module

    module, _ = build_module(program, values)
    verify_module(module)
    return select_network(module.networks, name, program.path)


def trial_config(network: Network, settings: TuneSettings) -> dict[str, Any]:
    from neuralc.lower.training import training_config

    config = training_config(network)
    config["train"].update(settings.overrides)
    if settings.seed is not None:
        config["train"]["seed"] = settings.seed
    return config


def _record_failure(trial: Any, exc: CompileError) -> None:
    """Keep why a trial failed, and where (a JSON list, as the storage keeps user attributes)."""
    diagnostic = exc.diagnostics[0]
    trial.set_user_attr("error", diagnostic.message)
    if diagnostic.loc is not None:
        loc = diagnostic.loc
        trial.set_user_attr("error_at", [loc.file, loc.line, loc.column])


def _failure_location(trials: list[Any], path: str) -> SourceLocation | None:
    """The location of the first failure in this model's file (a shared study may hold
    trials of other processes whose locations point elsewhere)."""
    for trial in trials:
        at = trial.user_attrs.get("error_at")
        if isinstance(at, list) and len(at) == 3 and at[0] == path:
            return SourceLocation(str(at[0]), int(at[1]), int(at[2]))
    return None


def sampler_seed(seed: int) -> int:
    """Optuna's samplers seed numpy's legacy generator, which takes 0 to 2**32 - 1; the seeds
    neuralc accepts are int64s. Those below 2**32 are used as they are, larger ones are mixed
    down to 32 bits (deterministically, so a study stays reproducible)."""
    import numpy as np

    if 0 <= seed < 2**32:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])


def make_sampler(method: str, space: list[Hyperparameter], seed: int) -> Any:
    import optuna

    seed = sampler_seed(seed)
    kind = SAMPLERS[method]
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        grid = {hp.name: _grid_keys(hp) for hp in space}
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _grid_keys(hp: Hyperparameter) -> list[Any]:
    from neuralc.train.space import _PLAIN, _literal

    values = hp.grid_values()
    return values if all(isinstance(v, _PLAIN) for v in values) else [_literal(v) for v in values]


def tune(
    program: ast.Program, settings: TuneSettings, data: Callable[[dict[str, Any]], Any]
) -> TuneResult:
    """Run the study; `data(config)` gives the prepared data for a trial's config."""
    import optuna

    space = collect(program)
    if not space:
        raise error(
            "the model has no HPO(...) expressions to search",
            None,
            "wrap a value, e.g. Dense(HPO(choice(32, 64))), or train it with `neuralc run`",
        )
    first = _first_network(program, settings.network)
    base = trial_config(first, settings)
    method = str(base["train"].get("search_method") or "bayesian")
    trials = settings.trials or int(base["train"].get("num_trials") or 10)
    seed = int(base["train"].get("seed") or 0)
    grid = SAMPLERS[method] == "grid"
    sampler = make_sampler(method, space, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=settings.study_name or first.name,
            storage=settings.storage,
            sampler=sampler,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            direction="minimize",
            load_if_exists=True,
        )
    except (ValueError, ImportError) as exc:
        raise error(
            f"cannot open the study storage {settings.storage!r}: {exc}",
            None,
            "give an RDB URL such as sqlite:///study.db",
        ) from None
    except Exception as exc:  # SQLAlchemy's errors, without importing SQLAlchemy here
        raise error(f"cannot open the study storage {settings.storage!r}: {exc}") from None
    _check_compatible(study, space, grid)
    objective = _Objective(program, space, settings, data, grid)
    started, before = time.perf_counter(), len(study.trials)
    study.optimize(
        objective,
        n_trials=trials,
        timeout=settings.timeout,
        callbacks=[_progress] if settings.verbose else [],
        catch=(),
    )
    if settings.verbose:
        ran = len(study.trials) - before
        print(f"{ran} trial(s) in {time.perf_counter() - started:.1f} s")
    complete = [
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.value is not None
        and math.isfinite(t.value)
    ]
    if not complete:
        reasons = {t.user_attrs.get("error") for t in study.trials} - {None}
        raise error(
            "no trial completed",
            _failure_location(study.trials, program.path) or primary_loc(first.loc),
            *(sorted(reasons)[:3] or ["every trial was pruned or failed"]),
        )
    best_trial = min(complete, key=lambda t: t.value)
    by_name = {hp.name: hp for hp in space}
    best = {
        by_name[k].loc: by_name[k].from_param(v)
        for k, v in best_trial.params.items()
        if k in by_name
    }
    return TuneResult(study, space, best, resolve_source(program, best), method)


def _first_network(program: ast.Program, name: str | None, tries: int = 64) -> Network:
    """The network of the first combination that builds (its train settings give the
    sampler, trial count and seed): a combination that does not build (heads that do not
    divide the width) is only a pruned trial. When none of the first `tries` builds, the first
    one's diagnostic."""
    from itertools import islice

    from neuralc.frontend.check import trials as combinations

    failure: CompileError | None = None
    for values in islice(combinations(program).trials, tries):
        try:
            return build_network(program, values, name)
        except CompileError as exc:
            failure = failure or exc
    assert failure is not None  # a program always has at least one combination
    raise failure


class _Recorder:
    """A stand-in for an Optuna trial that records the distribution of each `suggest_*`."""

    def __init__(self) -> None:
        self.distributions: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        from optuna.distributions import CategoricalDistribution

        self.distributions[name] = CategoricalDistribution(choices)
        return choices[0]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        from optuna.distributions import IntDistribution

        self.distributions[name] = IntDistribution(low, high, log=log, step=step)
        return low

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        from optuna.distributions import FloatDistribution

        self.distributions[name] = FloatDistribution(low, high, log=log, step=step)
        return low


def _check_compatible(study: Any, space: list[Hyperparameter], grid: bool) -> None:
    """A study reopened from `--storage` (same name) must have the same kind of distribution
    for each hyperparameter, and the same choices: Optuna would raise in the first trial."""
    import warnings

    from optuna.distributions import CategoricalDistribution, check_distribution_compatibility

    recorder = _Recorder()
    with warnings.catch_warnings():  # a range the step does not divide: warned in trials
        warnings.simplefilter("ignore")
        for hp in space:
            hp.suggest(recorder, grid)
    by_name = {hp.name: hp for hp in space}
    for past in study.get_trials(deepcopy=False):
        for name, old in past.distributions.items():
            new = recorder.distributions.get(name)
            if new is None:
                continue
            try:
                check_distribution_compatibility(old, new)
                same = not isinstance(old, CategoricalDistribution) or old.choices == new.choices
            except ValueError:
                same = False
            if not same:
                raise error(
                    f"the study '{study.study_name}' in the storage already searched "
                    f"{name} over another space ({old}); this model's is {new}",
                    by_name[name].loc,
                    "give a new --study-name, or a new --storage",
                )


def _progress(study: Any, trial: Any) -> None:
    value = "" if trial.value is None else f" value {trial.value:.4g}"
    reason = trial.user_attrs.get("error", "")
    print(
        f"trial {trial.number}: {trial.state.name.lower()}{value}"
        + (f" ({reason})" if reason else ""),
        flush=True,
    )


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.trials:
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if (t.datetime_complete and t.datetime_start)
            else None
        )
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": value,
                "params": dict(t.params),
                "seconds": seconds,
                "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
                **{k: v for k, v in t.user_attrs.items() if k != "epochs"},
                "epochs": t.user_attrs.get("epochs"),
            }
        )
    return rows
