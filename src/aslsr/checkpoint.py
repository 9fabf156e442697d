"""Training checkpoints, so an interrupted run can resume and end exactly where an uninterrupted one would.

A checkpoint is one ``torch.save`` file of tensors and plain values (state dicts, random-number
generator states, the loss history), written atomically after every scale and every
``config.checkpoint_every`` iterations, and read back only with ``torch.load(weights_only=True)``.
It carries a fingerprint of the inputs and the configuration: a checkpoint from other data or
other settings is refused rather than silently mixed in.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError

#: Settings that may differ between the interrupted and the resumed run (they do not change the result
#: on the same device).
MACHINE_SETTINGS = ("threads",)
FORMAT = "aslsr-checkpoint-1"


@dataclass
class TrainingState:
    """Everything the training loop needs to continue from scale ``level``, iteration ``iteration``.

    ``scale`` holds the per-scale state (optimisers, critic, the guard's remembered weights, this scale's rows)
    while a scale is under way; it is empty at a scale boundary (``iteration == 0``).
    """

    level: int
    iteration: int
    generator: dict[str, torch.Tensor]
    numpy_rng: dict[str, Any]
    noise_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[dict] = field(default_factory=list)
    scale_seconds: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    previous_output: torch.Tensor | None = None
    scale: dict[str, Any] = field(default_factory=dict)


def capture_rngs(rng: np.random.Generator, noise_generator: torch.Generator) -> dict[str, Any]:
    """The states of the three random streams training draws from."""
    return {
        "numpy_rng": rng.bit_generator.state,
        "noise_rng": noise_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def restore_rngs(state: TrainingState, rng: np.random.Generator, noise_generator: torch.Generator) -> None:
    rng.bit_generator.state = state.numpy_rng
    noise_generator.set_state(state.noise_rng)
    torch.set_rng_state(state.torch_rng)


def fingerprint(*, config: dict[str, Any], arrays: dict[str, np.ndarray | None]) -> str:
    """A SHA-256 over the configuration (less machine settings) and the training inputs."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in sorted(config.items()) if k not in MACHINE_SETTINGS}
    digest.update(repr(settings).encode())
    for name, array in sorted(arrays.items()):
        digest.update(name.encode())
        if array is not None:
            contiguous = np.ascontiguousarray(array)
            digest.update(str((contiguous.dtype, contiguous.shape)).encode())
            digest.update(contiguous.tobytes())
    return digest.hexdigest()


class Checkpointer:
    """Saves and loads the :class:`TrainingState` of one run at ``path``."""

    def __init__(self, path: str | os.PathLike, *, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def save(self, state: TrainingState) -> None:
        payload = {"format": FORMAT, "fingerprint": self.fingerprint, **state.__dict__}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        torch.save(payload, temporary)
        os.replace(temporary, self.path)

    def load(self) -> TrainingState | None:
        """The saved state, or None when there is none; InputError when it belongs to another run."""
        if not self.path.exists():
            return None
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated or foreign file: refuse it, never unpickle it
            raise InputError(
                f"not a readable aslsr checkpoint ({type(error).__name__}); start again with --overwrite", self.path
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InputError("not an aslsr checkpoint; start again with --overwrite", self.path)
        if payload.get("fingerprint") != self.fingerprint:
            raise InputError(
                "this checkpoint was made from other inputs or settings; resume with the same "
                "inputs and options, or start again with --overwrite",
                self.path,
            )
        names = TrainingState.__dataclass_fields__
        return TrainingState(**{k: v for k, v in payload.items() if k in names})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
