"""Applications: the command line and what it runs (run, live, hil, export)."""
