"""Run many (scenario, controller, seed) tasks: in-process, in forked worker processes, or
as tasks on a Dask cluster.

A task's result is a compact, JSON-ready *record* (the numeric KPIs of ``summary.json``
and a few daily arrays), never a live SimPy object, so it crosses process and machine
boundaries as a plain JSON string and is stored as one JSON file per run
(:mod:`twin.trials.store`). None of the project's objects is pickled.

The unit of work is one seed (:func:`units_of`: the tasks sharing an ``inputs_key``): its
exogenous inputs (PV clouds, mall noise, EV sessions) are built where the unit runs and
handed to every controller of that seed (and every battery size of a sweep point at that
seed), so nothing large crosses a process boundary and every controller sees the same
draws (common random numbers).

* ``workers=1`` and no scheduler: in-process;
* ``workers=N``: N worker processes forked from this one after it has imported the engine
  (:mod:`twin.trials.pool`): no Dask, no re-import, the unit's index goes out and JSON
  records come back over a pipe;
* ``scheduler="tcp://HOST:PORT"``: an existing Dask cluster (``dask scheduler`` + ``dask
  worker``); a worker plugin (:mod:`twin.trials.preload`) imports the engine on each worker
  once; a unit travels as JSON and comes back as JSON.

A run that raises is reported through ``on_error`` and the others go on. A lost cluster
(the scheduler gone, or no worker connected for ``cluster_timeout_s``) raises
:class:`ClusterLostError`: the runs finished before it have been handed to ``on_record``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
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


#: Estimated cost of a run for :func:`choose_workers`: fixed per run (controller, results)
#: and per step [s]; per unit (the inputs build); and the serial time below which parallel
#: workers do not pay for their start-up [s]. Conservative figures of this project's
#: benchmarks (six_phase at 15 min: ~15,000 steps/s).
RUN_FIXED_S, STEP_S, UNIT_S, MIN_PARALLEL_S = 0.03, 1 / 15_000, 0.1, 1.5


def estimated_serial_s(tasks: Sequence[RunTask]) -> float:
    """A rough serial wall time of ``tasks`` [s] (for the choice of the worker count only)."""
    units = {t.inputs_key for t in tasks}
    steps = sum(t.scenario.config.n_steps for t in tasks)
    return len(tasks) * RUN_FIXED_S + steps * STEP_S + len(units) * UNIT_S


def choose_workers(tasks: Sequence[RunTask], requested: int | None) -> tuple[int, str | None]:
    """The worker count to use and, when it differs from the default, a one-line note why.

    An explicit ``requested`` count is kept. By default (``None``) it is the core count,
    capped by the number of seeds, and 1 when the whole trial is estimated to take less
    than :data:`MIN_PARALLEL_S` serially (forking workers would not pay).
    """
    if requested is not None:
        return requested, None
    n = default_workers()
    if n <= 1 or not tasks:
        return 1, None
    est = estimated_serial_s(tasks)
    if est < MIN_PARALLEL_S:
        return 1, (f"twin: note: {len(tasks)} runs of about {est:.1f} s in all are too small to gain "
                   f"from parallel workers; running in-process (--workers 1; give --workers N to "
                   "force workers)")
    return n, None


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


def warm_imports() -> None:
    """Import what every run needs, once, before the workers fork (they inherit it)."""
    import pvlib  # noqa: F401  (the synthetic PV model; the inputs builder may import it lazily)

    import controllers  # noqa: F401  (every registered controller)
    import twin.components.inputs
    import twin.engine
    import twin.engine.results
    import twin.trials.store  # noqa: F401


def units_of(tasks: Sequence[RunTask], min_units: int = 1) -> list[list[RunTask]]:
    """The tasks grouped by ``inputs_key`` (one group per seed and inputs-relevant site), in
    first-seen order; while there are fewer groups than ``min_units``, the largest is halved
    (each half builds the same inputs again: the draws depend only on the scenario and seed,
    so the common random numbers are kept). Largest first, for an even finish."""
    groups: dict[str, list[RunTask]] = {}
    for t in tasks:
        groups.setdefault(t.inputs_key, []).append(t)
    units = list(groups.values())
    while len(units) < min_units:
        big = max(range(len(units)), key=lambda i: len(units[i]))
        if len(units[big]) < 2:
            break
        u = units.pop(big)
        units[big:big] = [u[: len(u) // 2], u[len(u) // 2:]]
    return sorted(units, key=len, reverse=True)  # stable: equal sizes keep their order


def unit_results(unit: Sequence[RunTask]) -> Iterator[tuple[RunTask, dict[str, Any] | BaseException]]:
    """Build the unit's inputs once (from its first task) and run every task on them; yields
    ``(task, record)`` or ``(task, exception)`` per task, as each finishes."""
    try:
        inputs = _build_inputs(unit[0].scenario)
    except Exception as exc:
        for t in unit:
            yield t, exc
        return
    for t in unit:
        try:
            yield t, run_record(t, inputs)
        except Exception as exc:
            yield t, exc


def result_json(task: RunTask, res: dict[str, Any] | BaseException) -> str:
    """One result as the JSON that crosses a process boundary: ``{"rec": record}`` or
    ``{"key": ..., "error": exception type name, "message": ...}``."""
    if isinstance(res, BaseException):
        return json.dumps({"key": task.key, "error": type(res).__name__, "message": str(res)})
    return json.dumps({"rec": res})


class RemoteError(RuntimeError):
    """A run failed in another process; carries the original exception's type name."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


def _remote_error(type_name: str, message: str) -> BaseException:
    """An exception that prints like the original (``TypeName: message``)."""
    cls = type(type_name, (RemoteError,), {}) if type_name.isidentifier() else RemoteError
    return cls(type_name, message)


def hand_result(text: str, by_key: dict[str, RunTask], on_record: OnRecord, on_error: OnError) -> None:
    """Pass one :func:`result_json` on to ``on_record`` / ``on_error`` (and forget its task)."""
    msg = json.loads(text)
    if "rec" in msg:
        by_key.pop(str(msg["rec"]["key"]), None)
        on_record(msg["rec"])
    else:
        on_error(by_key.pop(str(msg["key"])), _remote_error(str(msg["error"]), str(msg["message"])))


def unit_json(unit: Sequence[RunTask]) -> str:
    """A unit as JSON (each scenario as its pydantic JSON): what a Dask task receives."""
    return json.dumps([{"key": t.key, "scenario": t.scenario.model_dump_json(), "controller": t.controller,
                        "inputs_key": t.inputs_key, "tags": t.tags} for t in unit])


def dask_unit(text: str) -> str:
    """Dask task: run a :func:`unit_json` unit where it lands (inputs built there, nothing
    shipped); a JSON list of :func:`result_json` strings."""
    unit = []
    for t in json.loads(text):
        scn = Scenario.model_validate_json(t["scenario"])
        unit.append(RunTask(t["key"], scn, t["controller"], t["inputs_key"], t["tags"]))
    return json.dumps([result_json(t, r) for t, r in unit_results(unit)])


OnRecord = Callable[[dict[str, Any]], None]
OnError = Callable[[RunTask, BaseException], None]


def _run_in_process(tasks: Sequence[RunTask], on_record: OnRecord, on_error: OnError) -> None:
    for unit in units_of(sorted(tasks, key=lambda t: t.inputs_key)):  # one inputs build per key
        for t, res in unit_results(unit):
            if isinstance(res, BaseException):
                on_error(t, res)
            else:
                on_record(res)


def _run_on_dask(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    scheduler: str,
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
        _dask_trial(tasks, on_record, on_error, scheduler, cluster_timeout_s)
    finally:
        gc.collect()  # abandoned gathers of a lost cluster report "never retrieved" when collected
        for n, lv in levels.items():
            logging.getLogger(n).setLevel(lv)


def _dask_trial(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    scheduler: str,
    cluster_timeout_s: float,
) -> None:
    from distributed import Client

    from twin.trials.preload import register_preload

    client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    by_future: dict[Any, list[RunTask]] = {}
    try:
        register_preload(client)  # every worker imports the engine once, before the first task
        for unit in units_of(tasks, max(2, _n_workers(client))):  # one task per seed
            fut = client.submit(dask_unit, unit_json(unit), pure=False,
                                key=f"unit-{unit[0].key}-{time.time_ns()}")
            by_future[fut] = unit
        try:
            _collect(client, by_future, on_record, on_error, scheduler, cluster_timeout_s)
        except OSError as exc:  # a closed comm: the scheduler went away mid-call
            raise ClusterLostError(f"lost the connection to the Dask scheduler at {scheduler} "
                                   f"({type(exc).__name__})") from exc
    except BaseException:
        if client.status == "running":
            client.cancel(list(by_future))
        raise
    finally:
        client.close(timeout=10)  # at most 10 s with a lost scheduler


def _collect(client: Any, by_future: dict[Any, list[RunTask]], on_record: OnRecord, on_error: OnError,
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


def _hand_over(done: set[Any], by_future: dict[Any, list[RunTask]], on_record: OnRecord,
               on_error: OnError) -> bool:
    """Pass finished and erred futures on (and forget them); True when there was any."""
    handled = False
    for fut in done:
        if fut.status == "finished":
            try:  # the worker that holds the result may die before it is fetched
                texts = json.loads(fut.result(timeout=POLL_S))
            except TimeoutError:
                continue  # rescheduled: waited for again
            unit = by_future.pop(fut)
            by_key = {t.key: t for t in unit}
            for text in texts:
                hand_result(text, by_key, on_record, on_error)
        elif fut.status == "error":
            exc = fut.exception()
            for t in by_future.pop(fut):
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


def execute(
    tasks: Sequence[RunTask],
    on_record: OnRecord,
    on_error: OnError,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    cluster_timeout_s: float = 60.0,
    live: AbstractContextManager[Any] | None = None,
) -> None:
    """Run ``tasks``; call ``on_record(record)`` as each finishes, ``on_error(task, exc)`` on failure.

    Parameters
    ----------
    workers : 1 = in-process; N > 1 = a pool of N worker processes forked from this one
        (:mod:`twin.trials.pool`).
    scheduler : address of an existing Dask scheduler (``tcp://HOST:PORT``); wins over
        ``workers``.
    cluster_timeout_s : on Dask, raise :class:`ClusterLostError` when no worker has been
        connected for this long [s] (a lost scheduler raises it at once).
    live : entered around the runs, after the pool has forked (a progress bar: its thread
        must not exist when the workers fork).
    """
    if not tasks:
        return
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            if live is not None:
                stack.enter_context(live)
            _run_on_dask(tasks, on_record, on_error, scheduler, cluster_timeout_s)
        elif workers <= 1:
            if live is not None:
                stack.enter_context(live)
            _run_in_process(tasks, on_record, on_error)
        else:
            from twin.trials.pool import run_forked

            run_forked(units_of(tasks, workers), on_record, on_error, workers, live)


__all__ = [
    "WALL_KEYS",
    "ClusterLostError",
    "RunTask",
    "choose_workers",
    "default_workers",
    "estimated_serial_s",
    "execute",
    "expected_header",
    "numeric_kpis",
    "run_record",
    "unit_results",
    "units_of",
    "warm_imports",
]
