"""Run many (scenario, controller, seed) tasks: in-process, or as tasks on Dask.

A task's result is a compact, JSON-ready *record* (the numeric KPIs of ``summary.json``
and a few daily arrays), never a live SimPy object, so it crosses process and machine
boundaries cheaply and is stored as one JSON file per run (:mod:`twin.trials.store`).
On Dask, what a task receives is JSON too (the scenario's pydantic JSON) and a seed's
inputs cross once as ``.npz`` bytes (:mod:`twin.trials.wire`): none of the project's
objects is pickled.

The exogenous inputs (PV clouds, mall noise, EV sessions) are built once per seed (and per
inputs-relevant site: a battery-size sweep shares them) and handed to every controller of
that seed: in-process as the same object, on Dask as one future that the run tasks depend
on. That is the common-random-numbers design of the trials: every controller sees the same
draws.

* ``workers=1`` and no scheduler: in-process, no Dask at all;
* ``workers=N``: a ``distributed.LocalCluster`` of N single-threaded worker processes;
* ``scheduler="tcp://HOST:PORT"``: an existing cluster (``dask scheduler`` + ``dask worker``).

A run that raises is reported through ``on_error`` and the others go on. A lost cluster
(the scheduler gone, or no worker connected for ``cluster_timeout_s``) raises
:class:`ClusterLostError`: the runs finished before it have been handed to ``on_record``.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.config import Scenario
from twin.kpi_catalogue import volatile_keys

#: How long to try to reach an external scheduler [s].
CONNECT_TIMEOUT_S = 30.0

#: How often the Dask loop looks at the cluster while it waits for runs [s].
POLL_S = 1.0


class ClusterLostError(RuntimeError):
    """The Dask cluster stopped serving the trial (scheduler gone, or no worker for too long)."""


#: Summary keys that are wall-clock measurements (they differ between identical runs): the
#: ``volatile`` rows of the KPI catalogue.
WALL_KEYS: frozenset[str] = volatile_keys()


@dataclass(frozen=True)
class RunTask:
    """One run to do.

    Attributes
    ----------
    key : store key (scenario hash + controller + seed).
    scenario : the scenario of this seed / grid point (seed and overrides applied).
    controller : registered controller name, or ``NAME#K`` for the K-th arm of one controller.
    inputs_key : runs with the same ``inputs_key`` share one inputs build.
    tags : extra columns for the record (e.g. the grid point's values).
    """

    key: str
    scenario: Scenario
    controller: str
    inputs_key: str
    tags: dict[str, Any] = field(default_factory=dict)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def numeric_kpis(summary: dict[str, Any]) -> dict[str, float]:
    """Every numeric top-level entry of a summary (booleans and nested dicts left out)."""
    out: dict[str, float] = {}
    for k, v in summary.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[k] = float(v)
    if "bess_throughput_kwh" not in out and "bess_charge_kwh" in out and "bess_discharge_kwh" in out:
        out["bess_throughput_kwh"] = out["bess_charge_kwh"] + out["bess_discharge_kwh"]
    if "sessions_total" in out and "sessions_satisfied" in out:
        tot = out["sessions_total"]
        out.setdefault("sessions_satisfied_frac", out["sessions_satisfied"] / tot if tot else math.nan)
    return out


def _make_controller(scn: Scenario, name: str) -> Any:
    from controllers.base import REGISTRY, UnknownControllerError, make_controller
    from twin.config import ConfigError

    name = name.split("#", 1)[0]  # "six_phase#2": the second arm of an A/A trial
    params = scn.config.controller_params if name == scn.config.controller else {}
    try:
        return make_controller(name, scn.site, params)
    except UnknownControllerError:
        raise ConfigError(
            f"{scn.path}: unknown controller {name!r}; registered: {sorted(REGISTRY)} "
            "(see 'twin controllers')"
        ) from None


def expected_header(task: RunTask) -> dict[str, Any]:
    """What a stored record of ``task`` must carry to be reused (:data:`twin.trials.store.HEADER`):
    its key, the full scenario hash, controller, seed, this process's code version, tags."""
    from twin.trials.store import code_version, scenario_hash

    return {
        "key": task.key,
        "scenario_hash": scenario_hash(task.scenario, length=64),
        "controller": task.controller,
        "seed": int(task.scenario.config.seed),
        "code_version": code_version(),
        "tags": dict(task.tags),
    }


def run_record(task: RunTask, inputs: Any) -> dict[str, Any]:
    """Simulate one task on prebuilt ``inputs`` and return its compact record.

    The record holds ``key``, ``controller``, ``seed``, ``tags``, ``code_version`` (of the
    process that ran it), ``kpis`` (every numeric summary entry), ``daily`` (per local day:
    date, grid cost [currency], grid import [kWh]) and ``wall_s`` (simulation + results)
    [s]. The caller adds ``scenario_hash`` (see :func:`expected_header`).
    """
    from twin.engine import Twin
    from twin.engine.results import build_sessions, build_summary, build_timeseries
    from twin.trials.store import code_version

    scn = task.scenario
    t0 = time.perf_counter()
    twin = Twin(scn, _make_controller(scn, task.controller), inputs=inputs)
    out = twin.run()
    # the parts of build_results a record needs (the 24-hour profile table is left out)
    ts = build_timeseries(out)
    summary = build_summary(out, ts, build_sessions(out))
    day = ts["timestamp"].dt.strftime("%Y-%m-%d")
    daily = ts.groupby(day, sort=True)[["grid_cost_soles", "grid_import_kwh"]].sum()
    kpis = numeric_kpis(summary)
    if "co2_avoided_bess_kg" not in kpis:  # counterfactual: the same load and PV with no battery
        net = np.maximum(ts["load_kwh"].to_numpy() - ts["pv_kwh"].to_numpy(), 0.0)
        kpis["co2_avoided_bess_kg"] = float(
            net.sum() * scn.site.grid.co2_kg_per_kwh - kpis.get("co2_emissions_kg", 0.0)
        )
    return {
        "key": task.key,
        "controller": task.controller,
        "seed": int(scn.config.seed),
        "code_version": code_version(),
        "tags": dict(task.tags),
        "kpis": kpis,
        "interrupted": bool(out.interrupted),
        "daily": {
            "date": daily.index.tolist(),
            "grid_cost_soles": daily["grid_cost_soles"].astype(float).tolist(),
            "grid_import_kwh": daily["grid_import_kwh"].astype(float).tolist(),
        },
        "wall_s": time.perf_counter() - t0,
    }


def _build_inputs(scn: Scenario) -> Any:
    from twin.components.inputs import build_inputs

    return build_inputs(scn)


def task_json(task: RunTask) -> str:
    """``task`` as JSON (the scenario as its pydantic JSON): what a Dask run task receives."""
    return json.dumps({"key": task.key, "scenario": task.scenario.model_dump_json(),
                       "controller": task.controller, "inputs_key": task.inputs_key, "tags": task.tags})


def dask_inputs(scenario_json: str) -> bytes:
    """Dask task: build a seed's inputs and return them as ``.npz`` bytes."""
    from twin.trials.wire import encode_inputs

    return encode_inputs(_build_inputs(Scenario.model_validate_json(scenario_json)))


def dask_run(task: str, inputs_npz: bytes) -> dict[str, Any]:
    """Dask task: a run from :func:`task_json` and its seed's ``.npz`` inputs; a JSON-ready record."""
    from twin.trials.wire import decode_inputs

    t = json.loads(task)
    scn = Scenario.model_validate_json(t["scenario"])
    rt = RunTask(t["key"], scn, t["controller"], t["inputs_key"], t["tags"])
    return run_record(rt, decode_inputs(inputs_npz, scn))


OnRecord = Callable[[dict[str, Any]], None]
OnError = Callable[[RunTask, BaseException], None]


def _run_in_process(tasks: Sequence[RunTask], on_record: OnRecord, on_error: OnError) -> None:
    cache_key: str | None = None
    inputs: Any = None
    failed: BaseException | None = None
    for t in sorted(tasks, key=lambda t: t.inputs_key):  # one inputs build per key, held once
        if t.inputs_key != cache_key:
            cache_key, inputs, failed = t.inputs_key, None, None
            try:
                inputs = _build_inputs(t.scenario)
            except Exception as exc:
                failed = exc
        if failed is not None:
            on_error(t, failed)
            continue
        try:
            rec = run_record(t, inputs)
        except Exception as exc:
            on_error(t, exc)
            continue
        on_record(rec)


def _run_on_dask(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    workers: int,
    scheduler: str | None,
    cluster_timeout_s: float,
) -> None:
    import distributed  # noqa: F401  (its loggers exist once it is imported)

    # distributed's own warnings (rescheduled keys, reconnect attempts, abandoned gathers)
    # would repeat on stderr what the trial reports in one line; they are muted while it runs
    names = ["asyncio", "distributed",
             *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    try:
        _dask_trial(tasks, on_record, on_error, workers, scheduler, cluster_timeout_s)
    finally:
        gc.collect()  # abandoned gathers of a lost cluster report "never retrieved" when collected
        for n, lv in levels.items():
            logging.getLogger(n).setLevel(lv)


def _dask_trial(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    workers: int,
    scheduler: str | None,
    cluster_timeout_s: float,
) -> None:
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    else:
        # the workers ignore Ctrl-C (the signal goes to the whole process group): this process
        # stops them cleanly and keeps what finished; SIG_IGN is inherited across spawn
        main = threading.current_thread() is threading.main_thread()
        prev = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
                silence_logs=logging.CRITICAL,  # no worker chatter (heartbeats at shutdown) on stderr
            )
        finally:
            if main:
                signal.signal(signal.SIGINT, prev)
        client = Client(cluster)
    where = scheduler or "the LocalCluster"
    by_future: dict[Any, RunTask] = {}
    try:
        inputs_f: dict[str, Any] = {}
        for t in tasks:
            if t.inputs_key not in inputs_f:  # one inputs build per seed, shared as .npz bytes
                inputs_f[t.inputs_key] = client.submit(
                    dask_inputs, t.scenario.model_dump_json(), pure=False,
                    key=f"inputs-{t.inputs_key}-{time.time_ns()}",
                )
            fut = client.submit(
                dask_run, task_json(t), inputs_f[t.inputs_key], pure=False,
                key=f"run-{t.key}-{time.time_ns()}",
            )
            by_future[fut] = t
        try:
            _collect(client, by_future, on_record, on_error, where, cluster_timeout_s)
        except OSError as exc:  # a closed comm: the scheduler went away mid-call
            raise ClusterLostError(f"lost the connection to the Dask scheduler at {where} "
                              f"({type(exc).__name__})") from exc
    except BaseException:
        if client.status == "running":
            client.cancel(list(by_future))
        raise
    finally:
        _quiet_close(client, cluster)


def _collect(client: Any, by_future: dict[Any, RunTask], on_record: OnRecord, on_error: OnError,
             where: str, cluster_timeout_s: float) -> None:
    """Hand each finished future to ``on_record`` / ``on_error``; raise :class:`ClusterLostError`
    when the scheduler goes away or no worker is connected for ``cluster_timeout_s`` [s]."""
    from distributed import wait
    from distributed.client import FuturesCancelledError

    no_worker_since: float | None = None
    while by_future:
        try:
            done = set(wait(list(by_future), timeout=POLL_S, return_when="FIRST_COMPLETED").done)
        except TimeoutError:  # nothing finished within POLL_S
            done = set()
        except FuturesCancelledError:  # only the client cancels them: on a lost scheduler
            raise ClusterLostError(f"lost the connection to the Dask scheduler at {where}") from None
        if any(f.status == "cancelled" for f in done) or client.status != "running":
            raise ClusterLostError(f"lost the connection to the Dask scheduler at {where}")
        if _hand_over(done, by_future, on_record, on_error):
            no_worker_since = None
            continue
        if done:  # lost with their worker and not yet rescheduled: not progress
            time.sleep(POLL_S)
        now = time.monotonic()
        if _n_workers(client) > 0:
            no_worker_since = None
        elif no_worker_since is None:
            no_worker_since = now
        elif now - no_worker_since > cluster_timeout_s:
            raise ClusterLostError(_no_worker(where, cluster_timeout_s))


def _hand_over(done: set[Any], by_future: dict[Any, RunTask], on_record: OnRecord,
               on_error: OnError) -> bool:
    """Pass finished and erred futures on (and forget them); True when there was any."""
    handled = False
    for fut in done:
        if fut.status == "finished":
            try:  # the worker that holds the result may die before it is fetched
                rec = fut.result(timeout=POLL_S)
            except TimeoutError:
                continue  # rescheduled: waited for again
            by_future.pop(fut)
            on_record(rec)
        elif fut.status == "error":
            t = by_future.pop(fut)
            exc = fut.exception()
            on_error(t, exc if isinstance(exc, BaseException) else RuntimeError(str(exc)))
        else:  # "lost" with its worker: the scheduler reschedules it
            continue
        fut.release()
        handled = True
    return handled


def _n_workers(client: Any) -> int:
    return int(client.scheduler_info(n_workers=0).get("n_workers", 0))


def _no_worker(where: str, timeout_s: float) -> str:
    return f"no Dask worker connected to {where} for {timeout_s:g} s (--cluster-timeout)"


def _quiet_close(client: Any, cluster: Any) -> None:
    """Close the client (at most 10 s with a lost scheduler) and the LocalCluster."""
    client.close(timeout=10)
    if cluster is not None:
        cluster.close()


def execute(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    cluster_timeout_s: float = 60.0,
) -> None:
    """Run ``tasks``; call ``on_record(record)`` as each finishes, ``on_error(task, exc)`` on failure.

    Parameters
    ----------
    workers : 1 = in-process without Dask; N > 1 = a LocalCluster of N worker processes.
    scheduler : address of an existing Dask scheduler (``tcp://HOST:PORT``); wins over
        ``workers``.
    cluster_timeout_s : on Dask, raise :class:`ClusterLostError` when no worker has been
        connected for this long [s] (a lost scheduler raises it at once).
    """
    if not tasks:
        return
    if scheduler is None and workers <= 1:
        _run_in_process(tasks, on_record, on_error)
    else:
        _run_on_dask(tasks, on_record, on_error, workers, scheduler, cluster_timeout_s)


__all__ = [
    "WALL_KEYS",
    "ClusterLostError",
    "RunTask",
    "default_workers",
    "execute",
    "expected_header",
    "numeric_kpis",
    "run_record",
]
