"""The former name of :mod:`gradflow.flow.spectra`, kept so that ``gradflow.spectra.…``
goes on working (see CHANGELOG.md)."""

from .flow.spectra import *  # noqa: F401,F403
from .flow.spectra import __all__ as __all__  # noqa: F401
