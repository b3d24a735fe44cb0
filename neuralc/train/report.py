"""What `neuralc run` and `neuralc tune` print and write: the final per-epoch table, the table
of trials, and the metrics JSON files. (The per-epoch progress bar is the training loop's own,
`neuralc.lower.train_core.EpochProgress`, since the emitted module shows it too.)"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuralc.commands.common import write_atomic


def console() -> Any:
    """stdout; wide when it is not a terminal (a log file should not squeeze the tables)."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)


def print_run(record: Mapping[str, Any], lines: Sequence[str]) -> None:
    """The per-epoch table (losses, metrics, lr, throughput) and where things were written."""
    from rich.table import Table

    history = record.get("epochs") or []
    out = console()
    if history:
        keys = [k for k in history[0] if k != "steps"]
        table = Table(
            title=f"{record.get('network')}: {record.get('backend')} on "
            f"{record.get('device')} ({record.get('precision')})"
        )
        for key in keys:
            table.add_column(key, justify="right")
        for row in history:
            style = "bold" if row.get("epoch") == record.get("best_epoch") else None
            table.add_row(*(_cell(row.get(k)) for k in keys), style=style)
        out.print(table)
    for line in lines:
        out.print(line, highlight=False, markup=False)


def print_trials(
    rows: Sequence[Mapping[str, Any]], params: Sequence[str], best: int | None
) -> None:
    from rich.table import Table

    table = Table(title="trials")
    for column in ("#", "state", "value", *params, "seconds"):
        table.add_column(column, justify="right")
    for row in rows:
        cells = [str(row["number"]), row["state"], _cell(row["value"])]
        cells += [_cell(row["params"].get(p)) for p in params]
        cells.append(_cell(row.get("seconds")))
        table.add_row(*cells, style="bold" if row["number"] == best else None)
    console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return "" if value is None else str(value)


def write_metrics(path: str | Path, payload: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(payload, indent=1, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | set):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)
