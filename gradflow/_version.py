"""The version of gradflow (read by the package, the code generator and the reports)."""

__version__ = "0.2.0"
