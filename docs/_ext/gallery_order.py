"""The gallery's reading order (sphinx-gallery's ``within_subsection_order``)."""

from __future__ import annotations

from pathlib import Path

#: examples in reading order: what a lag map is, where an LSTM keeps its gradient, how to
#: write a cell, spectra, then checking and training one's own networks
ORDER = (
    "plot_lstm_lag_map.py",
    "plot_forget_gate_path.py",
    "plot_user_defined_cell.py",
    "plot_lyapunov_spectrum.py",
    "plot_verify_your_lstm.py",
    "plot_adding_problem.py",
)


class ExampleOrder:
    """Sort key: the position in :data:`ORDER`; unlisted examples follow, by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename) -> tuple:
        name = Path(filename).name
        return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.src_dir)!r})"
