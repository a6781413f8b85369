"""The studies of the report: one module per study, each with ``TITLE`` and
``run(config) -> gradflow.report.Section``.  ``gradflow report`` runs them."""
