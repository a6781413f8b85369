"""The former name of :mod:`gradflow.train.tasks`, kept so that ``gradflow.tasks.…`` goes
on working (see CHANGELOG.md)."""

from .train.tasks import *  # noqa: F401,F403
from .train.tasks import __all__ as __all__  # noqa: F401
