"""What Adam does to the generator, step by step: one ``aslsr run`` in this process, its optimiser watched.

After every step of the first Adam optimiser the run creates (the generator's), one CSV row: the step, the
learning rate, the gradient norm before the step, quantiles (1, 10, 50, 90, 99 %) of sqrt(v_hat), Adam's
bias-corrected second-moment estimate per weight (sampled from at most 100,000 weights), and the largest and
median per-weight change in units of the learning rate. It only reads: the run is the same computation as
without it (BENCHMARKS.md 2026-12-02 afternoon). Beside STEPS.csv, STEPS_tensors.csv holds a row per step and
weight tensor (index in ``generator.parameters()`` order, shape, gradient norm, median sqrt(v_hat), median and
largest change in units of the learning rate).

    python benchmarks/adam_state.py CASE_DIR OUT_DIR SEED STEPS.csv [CONFIG.toml]

CASE_DIR is a prepared case of ``benchmarks/stability.py`` (T1 registered on the NR grid; ``--no-register``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import torch
from aslsr_command import run_command

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)
SAMPLE = 100_000


def watch_first_adam(rows: list[dict[str, Any]], tensor_rows: list[dict[str, Any]] | None = None) -> None:
    """Wrap ``torch.optim.Adam.step`` so that the first optimiser stepped appends a row per step to ``rows``.

    With ``tensor_rows``, also a row per step and weight tensor (its index in ``module.parameters()`` order).
    """
    original = torch.optim.Adam.step
    watched: list[torch.optim.Adam] = []

    def step(self: torch.optim.Adam, *args: Any, **kwargs: Any) -> Any:
        if not watched:
            watched.append(self)
        if self is not watched[0]:
            return original(self, *args, **kwargs)
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        before = [p.detach().clone() for p in params]
        grad_norm = float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params)))
        result = original(self, *args, **kwargs)
        count = int(self.state[params[0]]["step"])
        rate, beta2 = self.param_groups[0]["lr"], self.param_groups[0]["betas"][1]
        scale = torch.cat([self.state[p]["exp_avg_sq"].flatten() for p in params]).div(1 - beta2**count).sqrt()
        sample = scale[torch.randperm(scale.numel(), generator=torch.Generator().manual_seed(count))[:SAMPLE]]
        levels = torch.quantile(sample, torch.tensor(QUANTILES))
        change = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(params, before)]) / rate
        rows.append(
            {
                "step": count,
                "lr": rate,
                "grad_norm": grad_norm,
                **{f"sqrt_v_q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, levels)},
                "change_max_lr": float(change.max()),
                "change_median_lr": float(change.median()),
            }
        )
        if tensor_rows is not None:
            tensor_rows.extend(_per_tensor(self, params, before, count, rate, beta2))
        return result

    torch.optim.Adam.step = step


def _per_tensor(optimizer: torch.optim.Adam, params: list, before: list, count: int, rate: float, beta2: float):
    for index, (p, b) in enumerate(zip(params, before)):
        scale = optimizer.state[p]["exp_avg_sq"].div(1 - beta2**count).sqrt()
        change = (p.detach() - b).abs() / rate
        yield {
            "step": count,
            "tensor": index,
            "shape": "x".join(map(str, p.shape)),
            "grad_norm": float(p.grad.detach().norm()),
            "sqrt_v_median": float(scale.median()),
            "change_median_lr": float(change.median()),
            "change_max_lr": float(change.max()),
        }


def _write(table: Path, rows: list[dict[str, Any]]) -> None:
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    case, out, seed, table = Path(argv[0]), argv[1], argv[2], Path(argv[3])
    config = ["--config", argv[4]] if len(argv) > 4 else []
    rows: list[dict[str, Any]] = []
    tensor_rows: list[dict[str, Any]] = []
    watch_first_adam(rows, tensor_rows)
    from aslsr.cli import main as aslsr

    command = run_command(case, Path(out), t1="t1.nii.gz", like="ref_clean.nii.gz", seed=int(seed), extra=config)
    code = aslsr([*command[command.index("run") :], "--no-register"])  # in this process: the same arguments
    _write(table, rows)
    _write(table.with_name(table.stem + "_tensors.csv"), tensor_rows)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
