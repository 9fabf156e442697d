"""Progress of a cohort: which subjects wait, run, are done, were skipped or failed, logged as it changes.

One INFO line of the ``aslsr.cohort_progress`` logger each time a subject changes state, e.g.
``sub-02: running (1 done, 1 running, 0 failed, 1 waiting of 3)``. The states come from the
cohort loop (one after another) or from Dask: a task announces its start on the
:data:`EVENT_TOPIC` event topic, and the outcome arrives with its future.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

logger = logging.getLogger(__name__)

#: Dask event topic on which a subject's task announces that it started.
EVENT_TOPIC = "aslsr-cohort"
STATES = ("waiting", "running", "done", "skipped", "failed")


class CohortProgress:
    """The state of every subject of a cohort; thread-safe (Dask calls back from its own thread)."""

    def __init__(self, names: Iterable[str]):
        self._states = {name: "waiting" for name in names}
        self._lock = threading.Lock()

    def set(self, name: str, state: str) -> bool:
        """Move ``name`` to ``state`` and log the change; False (and no line) when nothing changed.

        A subject that already finished stays finished (a late "running" event is ignored).
        """
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
        with self._lock:
            old = self._states.get(name)
            if old is None or old == state or (old in ("done", "skipped", "failed") and state == "running"):
                return False
            self._states[name] = state
            summary = self.summary()
        logger.info("%s: %s (%s)", name, state, summary)
        return True

    def counts(self) -> dict[str, int]:
        """Subjects per state, every state listed."""
        values = list(self._states.values())
        return {state: values.count(state) for state in STATES}

    def summary(self) -> str:
        """E.g. ``1 done, 1 running, 0 failed, 1 waiting of 3`` (skipped ones only when there are any)."""
        counts = self.counts()
        parts = [f"{counts['done']} done"] + ([f"{counts['skipped']} skipped"] if counts["skipped"] else [])
        parts += [f"{counts['running']} running", f"{counts['failed']} failed", f"{counts['waiting']} waiting"]
        return ", ".join(parts) + f" of {len(self._states)}"

    def on_event(self, event) -> None:
        """Handler for Dask's ``Client.subscribe_topic``: ``event`` is ``(timestamp, {"name", "state"})``."""
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if isinstance(message, dict) and message.get("name") in self._states and message.get("state") in STATES:
            self.set(message["name"], message["state"])
