"""``twin report``: figures and a self-contained HTML page from one or several run folders.

Modules, one job each:

* :mod:`twin.report.load` reads and validates a run folder written by ``twin run``;
* :mod:`twin.report.aggregate` derives daily / monthly / hourly tables from it;
* :mod:`twin.report.style` holds colours, units and the figure factory (Agg canvas);
* :mod:`twin.report.sankey` draws the energy cascade;
* :mod:`twin.report.figures` has one function per single-run figure;
* :mod:`twin.report.compare` checks that runs are comparable and draws comparison figures;
* :mod:`twin.report.kpis` formats the KPI table from ``summary.json``;
* :mod:`twin.report.html` renders the page (images embedded as data URIs);
* :mod:`twin.report.build` writes PNGs and ``report.html`` atomically;
* :mod:`twin.report.cli` registers the ``twin report`` sub-command.

Importing this package is cheap (no pandas, no matplotlib): ``twin`` imports
:mod:`twin.report.cli` every time it builds its parser.
"""
