"""The studies of the report: one module per study, each with ``TITLE`` and
``run(config) -> gradflow.report.Section``.  ``gradflow report`` runs them."""

#: marks this folder as gradflow's studies, for ``gradflow report``'s discovery
GRADFLOW_STUDIES = True
