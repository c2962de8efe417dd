"""A Dask worker plugin that imports the engine on each worker once, when the trial starts.

Without it every worker imports twin, the controllers and pvlib inside its first task
(2-3 s each, measured); with it they do so when the plugin is registered, while the
client submits the units. Dask pickles the plugin instance (a class reference and no
state), as it does the task function: that is Dask's own business; the trial's tasks and
results are JSON strings (:func:`twin.trials.runner.unit_json`).
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

#: The plugin's name on the cluster (registering again replaces it).
NAME = "pvbess-twin-preload"


class Preload(WorkerPlugin):
    """Import what every run needs on the worker, once."""

    name = NAME

    def setup(self, worker: Any) -> None:
        """Called by Dask on each worker (present and future)."""
        from twin.trials.runner import warm_imports

        warm_imports()


def register_preload(client: Any) -> None:
    """Register :class:`Preload` on the client's cluster (idempotent)."""
    client.register_plugin(Preload(), name=NAME)


__all__ = ["NAME", "Preload", "register_preload"]
