"""The studies of the report: one module per study, each with ``TITLE`` and
``run(config) -> gradflow.report.Section``.  Installed as ``gradflow.studies``;
``gradflow report`` runs them (see :mod:`gradflow.report.studies`)."""
