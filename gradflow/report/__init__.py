"""Reports: studies in ``analysis/`` return sections; this package writes them out."""

from .section import Figure as Figure
from .section import Section as Section
from .section import StudyConfig as StudyConfig
from .section import Table as Table

__all__ = ["Figure", "Section", "StudyConfig", "Table"]
