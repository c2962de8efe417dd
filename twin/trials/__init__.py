"""Many runs of one scenario: controller A/B trials and sizing sweeps.

* :mod:`twin.trials.store` keys finished runs (scenario hash + controller + seed) and keeps
  one JSON record per run on disk, written atomically, so a trial resumes where it stopped;
* :mod:`twin.trials.runner` runs the tasks in-process or as Dask tasks (a LocalCluster, or
  an existing scheduler) and hands back compact records (KPI dicts and daily arrays);
* :mod:`twin.trials.ab` turns the records of an A/B trial into the paired statistics;
* :mod:`twin.trials.sweep` parses ``--set key=start:stop:step`` grids and computes payback.

The statistics themselves are in :mod:`twin.stats`, the sizing formulas in
:mod:`twin.sizing`; figures and pages in :mod:`twin.report.trials`.
"""
