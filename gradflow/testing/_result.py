"""What a check returns, and what it raises when it fails.

Every checker of :mod:`gradflow.testing` compares an *analytic* value (what gradflow or
the implementation under test computes) with a *reference* (finite differences, SymPy,
a closed form, PyTorch) elementwise, with the test ``|a - r| <= atol + rtol |r|`` of
``numpy.testing.assert_allclose``.  The result keeps the worst element: its error, where
it sits and both values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CheckResult", "CheckReport", "CheckFailure", "compare"]

#: verdicts of a :class:`CheckResult`
PASS, FAIL, INCONCLUSIVE = "pass", "FAIL", "inconclusive"


class CheckFailure(AssertionError):
    """A check failed.  ``.result`` (a :class:`CheckResult`) or ``.report`` holds the details.

    It derives from :class:`AssertionError`, so that pytest shows it as a failed test.
    """

    def __init__(self, message: str, *, result=None, report=None):
        super().__init__(message)
        self.result = result
        self.report = report


@dataclass
class CheckResult:
    """The outcome of one property, over every example it was tried on.

    Attributes
    ----------
    name : str
        The property (``"backward vs finite differences"``).
    compared : str
        What was compared with what.
    conditions : str
        When the property holds (``"W_hh = 0"``, ``"any weights"``).
    examples : int
        How many examples were tried.
    worst_error : float
        ``|analytic - reference|`` at the worst element (the one nearest to, or furthest
        beyond, its tolerance).
    relative_error : float
        ``worst_error / max(|reference|, atol / rtol)`` at that element.
    where : dict
        Where the worst element sits: ``example``, and as far as they apply ``parameter``,
        ``index``, ``step``, ``component``.
    tolerance : dict
        ``{"rtol": ..., "atol": ...}``.
    analytic, reference : float
        The two values at the worst element.
    verdict : {"pass", "FAIL", "inconclusive"}
    note : str
        Anything the reader needs (a method used, a diagnosis).
    """

    name: str
    compared: str
    conditions: str = ""
    examples: int = 0
    worst_error: float = 0.0
    relative_error: float = 0.0
    where: dict = field(default_factory=dict)
    tolerance: dict = field(default_factory=dict)
    analytic: float = float("nan")
    reference: float = float("nan")
    verdict: str = PASS
    note: str = ""
    _ratio: float = field(default=-1.0, repr=False)

    @property
    def passed(self) -> bool:
        """True unless the verdict is ``"FAIL"`` (an inconclusive diagnosis is not a failure)."""
        return self.verdict != FAIL

    # ------------------------------------------------------------------ accumulation
    def add(self, analytic, reference, *, rtol: float, atol: float, where: dict | None = None,
            labels=None, shown=None) -> float:
        """Compare one more pair of arrays; keep the worst element.  Returns its ratio
        ``|a - r| / (atol + rtol |r|)`` (<= 1 passes).

        `labels`, if given, maps a flat index of the arrays to a dict merged into `where`
        (for instance the parameter name and index inside it).
        """
        a = np.asarray(analytic, dtype=np.float64).ravel()
        r = np.asarray(reference, dtype=np.float64).ravel()
        if a.shape != r.shape:
            raise ValueError(f"compared arrays differ in size: {a.shape} vs {r.shape}")
        self.tolerance = {"rtol": float(rtol), "atol": float(atol)}
        if a.size == 0:
            return 0.0
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            err = np.where(a == r, 0.0, np.abs(a - r))   # equal infinities match
            ratio = np.where(err == 0, 0.0, err / (atol + rtol * np.abs(r)))
        # a NaN on either side is the worst possible element
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        k = int(np.argmax(ratio))
        worst = float(ratio[k])
        if worst > self._ratio:
            self._ratio = worst
            self.worst_error = float(err[k])
            floor = atol / rtol if rtol > 0 else atol
            self.relative_error = float(err[k] / max(abs(r[k]), floor, 1e-300))
            self.analytic = float(a[k] if shown is None else np.ravel(shown)[k])
            self.reference = float(r[k])
            loc = dict(where or {})
            if labels is not None:
                loc.update(labels(k))
            self.where = loc
        if worst > 1.0:
            self.verdict = FAIL
        return worst

    def add_le(self, value, bound, *, rtol: float, atol: float, where: dict | None = None,
               labels=None) -> float:
        """Check ``value <= bound`` elementwise (an inequality, with a tolerance for
        rounding); the "error" is the excess ``max(value - bound, 0)``."""
        v = np.asarray(value, dtype=np.float64).ravel()
        b = np.asarray(bound, dtype=np.float64).ravel()
        # below the bound counts as equal to it; above, the excess is the error
        return self.add(np.maximum(v, b), b, rtol=rtol, atol=atol, where=where,
                        labels=labels, shown=v) if v.size else 0.0

    def merge(self, other: "CheckResult") -> None:
        """Take `other`'s worst element if it is worse, and its failure."""
        if other.ratio > self._ratio:
            self._ratio = other.ratio
            self.worst_error, self.relative_error = other.worst_error, other.relative_error
            self.analytic, self.reference = other.analytic, other.reference
            self.where = dict(other.where)
            self.tolerance = dict(other.tolerance)
        if other.verdict == FAIL:
            self.verdict = FAIL
        if other.note:
            self.note = other.note

    def fail(self, note: str, *, where: dict | None = None) -> None:
        """Mark the property as failed for a reason that is not a numerical comparison."""
        self.verdict = FAIL
        self.note = f"{self.note}; {note}" if self.note else note
        if where:
            self.where = dict(where)
        self._ratio = np.inf

    @property
    def ratio(self) -> float:
        """Worst ``|a - r| / (atol + rtol |r|)`` seen (<= 1 passes); -1 before any comparison."""
        return self._ratio

    def where_text(self) -> str:
        return ", ".join(f"{k}={_show(v)}" for k, v in self.where.items())

    def message(self) -> str:
        """A readable account of the worst element."""
        lines = [f"property {self.name!r} {self.verdict}: {self.compared}"]
        if self.conditions:
            lines.append(f"  conditions: {self.conditions}")
        lines.append(f"  examples tried: {self.examples}")
        if np.isfinite(self.analytic) or np.isfinite(self.reference) or self.worst_error:
            lines.append(
                f"  worst element: analytic={self.analytic!r}  reference={self.reference!r}  "
                f"|error|={self.worst_error:.3g} (relative {self.relative_error:.3g})"
            )
        if self.where:
            lines.append(f"  where: {self.where_text()}")
        if self.tolerance:
            lines.append(f"  tolerance: rtol={self.tolerance['rtol']:.3g}, atol={self.tolerance['atol']:.3g}")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)

    def raise_if_failed(self) -> "CheckResult":
        if not self.passed:
            raise CheckFailure(self.message(), result=self)
        return self

    def __str__(self) -> str:
        return self.message()


def _show(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(str(int(i)) for i in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


class CheckReport(list):
    """Several :class:`CheckResult` (one per property), with a table view."""

    def __init__(self, results=(), *, subject: str = ""):
        super().__init__(results)
        self.subject = subject

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self if not r.passed]

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self:
                if r.name == key:
                    return r
            raise KeyError(key)
        return super().__getitem__(key)

    def table(self) -> str:
        """Property, examples tried, worst relative error, tolerance and verdict, one per row."""
        head = ("property", "examples", "worst rel. error", "tolerance", "verdict", "where / note")
        rows = []
        for r in self:
            err = "-" if r.ratio < 0 else f"{r.relative_error:.2e}"
            tol = "-"
            if r.tolerance:
                rt, at = r.tolerance["rtol"], r.tolerance["atol"]
                tol = f"rtol {rt:.0e}" if rt > 0 else f"atol {at:.0e}"
            extra = "; ".join(x for x in (r.where_text() if not r.passed else "", r.note) if x)
            rows.append((r.name, str(r.examples), err, tol, r.verdict, extra))
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
        out = [fmt.format(*head), fmt.format(*("-" * w for w in widths[:-1]), "-" * len(head[-1]))]
        out += [fmt.format(*row) for row in rows]
        return "\n".join(out)

    def message(self) -> str:
        failed = self.failed
        names = ", ".join(repr(r.name) for r in failed)
        head = f"{self.subject}: " if self.subject else ""
        return (f"{head}{len(failed)} of {len(self)} properties failed: {names}\n\n"
                + "\n\n".join(r.message() for r in failed))

    def raise_if_failed(self) -> "CheckReport":
        if not self.passed:
            raise CheckFailure(self.message(), report=self)
        return self

    def __str__(self) -> str:
        return self.table()


def compare(name: str, compared: str, analytic, reference, *, rtol: float, atol: float,
            conditions: str = "", where: dict | None = None, labels=None) -> CheckResult:
    """One comparison as a :class:`CheckResult` (one example)."""
    res = CheckResult(name, compared, conditions, examples=1)
    res.add(analytic, reference, rtol=rtol, atol=atol, where=where, labels=labels)
    return res
