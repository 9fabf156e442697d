"""Whole cohorts: one ``aslsr run`` per BIDS ASL run, locally or as tasks on a Dask cluster.

Each subject is one task (:func:`process_subject`) that never raises: it returns a
:class:`SubjectOutcome` (done, skipped or failed with the one-line reason), so one bad subject
cannot stop the others. Its ``aslsr run`` folder lives in ``OUT/work/<name>/``; its training
checkpoints there let a task that lost its worker (killed, out of memory) resume where it was
when Dask runs it again. Its BIDS-Derivatives files are published out of it at the end
(:mod:`aslsr.derivatives`): a subject whose derivatives are complete is skipped on a rerun, but
only while everything that changes its result is the same: the contents of its input files, the
target grid, the configuration and the quantification (:func:`job_key`, kept in
``OUT/work/<name>.options.json``). Otherwise it is computed again from the start, never resumed
from or published out of an earlier run with other settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .aslseries import sidecar_path
from .bids import SubjectInputs
from .cohort_progress import EVENT_TOPIC, CohortProgress
from .config import Config
from .derivatives import WORK_FOLDER, is_complete, listed_derivatives, publish_derivatives
from .errors import InputError
from .inputs import TargetSpec
from .io import save_json
from .outputs import staging_path
from .pipeline import CHECKPOINT_NAME, RunOptions, run

KEY_SUFFIX = ".options.json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubjectJob:
    """One task: a BIDS ASL run, the derivatives folder it writes into, and how to run it.

    ``options.overwrite`` redoes a subject that is already complete; ``resume`` and ``progress`` are
    decided per subject (an interrupted subject resumes; workers show no progress bars).
    """

    inputs: SubjectInputs
    out_dir: Path
    config: Config
    target: TargetSpec = TargetSpec()
    options: RunOptions = RunOptions()

    @property
    def name(self) -> str:
        return self.inputs.name

    @property
    def work_dir(self) -> Path:
        return self.out_dir / WORK_FOLDER / self.name


@dataclass(frozen=True)
class SubjectOutcome:
    name: str
    status: str  # "done", "skipped" (complete from an earlier run) or "failed"
    seconds: float
    message: str = ""
    outputs: tuple[str, ...] = ()  # derivative files, relative to the derivatives folder


def job_key(job: SubjectJob) -> str:
    """A SHA-256 over everything that changes a subject's result: its input files' bytes (ASL with
    sidecar and aslcontext, T1w, M0, ``--like``), the target, the configuration (less the thread
    count), registration, quantification, NaN handling and the aslsr version."""
    from ._version import __version__
    from .outputs import run_inputs

    digest = hashlib.sha256()
    options, target = job.options, job.target
    files = run_inputs(
        job.inputs.asl,
        job.inputs.t1w,
        job.inputs.m0,
        None if job.inputs.m0 is None else sidecar_path(job.inputs.m0),
        target.like,
    )
    for path in files:
        digest.update(f"{path.name}:".encode())
        digest.update(_file_digest(path))
    settings = {k: v for k, v in sorted(job.config.to_dict().items()) if k != "threads"}
    digest.update(
        repr(
            (
                settings,
                target.voxel_size,
                target.zoom,
                options.register,
                options.realign,
                options.quantify,
                options.nan_to_zero,
                __version__,
            )
        ).encode()
    )
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return b"absent"
    return digest.digest()


def _key_path(job: SubjectJob) -> Path:
    return job.work_dir.parent / f"{job.name}{KEY_SUFFIX}"


def _stored_key(job: SubjectJob) -> str | None:
    try:
        return json.loads(_key_path(job).read_text())["key"]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return None


def process_subject(job: SubjectJob, *, progress: bool = False) -> SubjectOutcome:
    """Run one subject end to end (or skip it when complete with the same inputs and options);
    never raises."""
    started = time.perf_counter()
    try:
        key = job_key(job)
        same = _stored_key(job) == key
        if same and is_complete(job.work_dir, job.out_dir) and not job.options.overwrite:
            outputs = listed_derivatives(job.work_dir)
            return SubjectOutcome(job.name, "skipped", 0.0, "complete from an earlier run", outputs)
        if job.options.overwrite or not same:  # start afresh: nothing of an earlier run is reused
            shutil.rmtree(job.work_dir, ignore_errors=True)
            shutil.rmtree(staging_path(job.work_dir), ignore_errors=True)
            save_json(_key_path(job), {"key": key})
        if not (job.work_dir / "report.json").is_file():
            _run_subject(job, progress=progress)
        outputs = publish_derivatives(job.inputs, job.work_dir, job.out_dir)
        return SubjectOutcome(job.name, "done", time.perf_counter() - started, outputs=outputs)
    except InputError as error:
        return SubjectOutcome(job.name, "failed", time.perf_counter() - started, str(error))
    except Exception as error:  # any other failure of this subject is reported, the cohort goes on
        return SubjectOutcome(job.name, "failed", time.perf_counter() - started, f"{type(error).__name__}: {error}")


def _run_subject(job: SubjectJob, *, progress: bool) -> None:
    inputs = job.inputs
    resume = (staging_path(job.work_dir) / CHECKPOINT_NAME).is_file()
    run(
        inputs.asl,
        inputs.t1w,
        job.work_dir,
        config=job.config,
        target=job.target,
        m0_path=inputs.m0,
        options=dataclasses.replace(job.options, overwrite=not resume, resume=resume, progress=progress),
    )


def run_cohort(
    jobs: Sequence[SubjectJob],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    on_outcome: Callable[[SubjectOutcome], None] = lambda outcome: None,
) -> list[SubjectOutcome]:
    """Process every job: one after another here, on a local Dask cluster of ``workers`` processes,
    or on the Dask scheduler at ``scheduler`` (whose workers must see the same files). Outcomes come
    in job order; ``on_outcome`` is called as each finishes. Each change of a subject's state
    (running, done, skipped, failed) is logged with the counts (:mod:`aslsr.cohort_progress`)."""
    tracker = CohortProgress(job.name for job in jobs)
    if scheduler is None and not workers:
        outcomes = []
        for job in jobs:
            tracker.set(job.name, "running")
            outcomes.append(process_subject(job, progress=progress))
            tracker.set(job.name, outcomes[-1].status)
            on_outcome(outcomes[-1])
        return outcomes
    return _run_on_dask(jobs, workers=workers, scheduler=scheduler, on_outcome=on_outcome, tracker=tracker)


def _process_on_worker(job: SubjectJob) -> SubjectOutcome:
    """:func:`process_subject` as a Dask task that first announces its start on the progress topic."""
    try:
        from distributed import get_worker

        get_worker().log_event(EVENT_TOPIC, {"name": job.name, "state": "running"})
    except Exception:  # progress lines are a courtesy: they never fail the subject
        logger.debug("could not announce the start of %s", job.name, exc_info=True)
    return process_subject(job)


def _run_on_dask(
    jobs: Sequence[SubjectJob],
    *,
    workers: int | None,
    scheduler: str | None,
    on_outcome: Callable[[SubjectOutcome], None],
    tracker: CohortProgress,
) -> list[SubjectOutcome]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--workers and --scheduler need Dask: pip install 'aslsr[cohort]'") from None
    cluster = None
    if scheduler is None:
        dashboard = ":0" if importlib.util.find_spec("bokeh") is not None else None  # any free port
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=dashboard)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            logger.info(
                "Dask dashboard: %s", dashboard_link(client) or "none (Dask serves one where bokeh is installed)"
            )
            client.subscribe_topic(EVENT_TOPIC, tracker.on_event)
            futures = client.map(_process_on_worker, list(jobs), key=[f"aslsr-{job.name}" for job in jobs], pure=False)
            by_key = {future.key: (index, job) for index, (future, job) in enumerate(zip(futures, jobs))}
            outcomes: list[SubjectOutcome | None] = [None] * len(jobs)
            for future in as_completed(futures):
                index, job = by_key[future.key]
                try:
                    outcome = future.result()
                except Exception as error:  # the task itself never raises: its worker died too often
                    outcome = SubjectOutcome(job.name, "failed", 0.0, f"{type(error).__name__}: {error}")
                outcomes[index] = outcome
                tracker.set(outcome.name, outcome.status)
                on_outcome(outcome)
    except OSError as error:
        raise InputError(f"cannot reach the Dask scheduler ({error})", scheduler) from None
    finally:
        if cluster is not None:
            cluster.close()
    return [outcome for outcome in outcomes if outcome is not None]


def dashboard_link(client) -> str | None:
    """The address of the Dask dashboard that ``client``'s scheduler serves, or None without one."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        return str(client.dashboard_link)
    except Exception:  # an old or odd scheduler: no address rather than no cohort
        return None


def threads_per_worker(workers: int | None) -> int | None:
    """Torch threads for each of ``workers`` local processes (cores shared out); None: all cores."""
    if not workers:
        return None
    return max(1, (os.cpu_count() or 1) // workers)
