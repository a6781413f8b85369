"""``Cell``: a cell specification with parameters, and its forward and backward passes.

The object layer is thin: it validates once at the boundary, lays out arrays and calls the
compiled kernels of :mod:`gradflow.codegen`.  Parameters follow PyTorch's names, shapes
and gate order, so weights move between the two without reshuffling.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from . import _validate as check
from . import cells
from . import _blas, _threads
from ._display import Displayed
from .errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError
from .symbolic.spec import CellSpec

__all__ = ["Cell", "Trace", "CheckpointedTrace", "Grads", "as_cell"]

_INITS = ("pytorch", "orthogonal")


def _all_finite(a: np.ndarray) -> bool:
    """Whether every value of `a` is finite, in one pass without temporaries: a NaN or an
    inf makes the sum NaN or inf.  (A sum that overflows although every value is finite
    answers False: callers then look for the first non-finite value, and find none.)"""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum()))


#: products of at most this many multiply-adds go through NumPy (see :func:`_matmul`)
SMALL_PRODUCT = 4096


def _matmul(a: np.ndarray, b: np.ndarray, threads: int = 1) -> np.ndarray:
    """``a @ b`` for 2-D float arrays, C-contiguous, through SciPy's BLAS; with `threads`
    > 1, split over gradflow's own threads instead (see :mod:`gradflow._threads`).

    The kernels' per-step products go through Numba's ``np.dot``, which calls SciPy's BLAS;
    doing the large products here with the same library keeps one BLAS thread pool busy
    instead of two (NumPy ships its own OpenBLAS, whose idle threads spin for a while after
    each call and would compete with the other pool's for the cores).
    """
    if threads > 1:
        return _threads.matmul(a, b, threads)
    if (0 in a.shape or 0 in b.shape or a.dtype not in (np.float64, np.float32)
            or a.shape[0] * a.shape[1] * b.shape[1] <= SMALL_PRODUCT):
        # small products (a sequence at a time): NumPy's call costs less than SciPy's, and
        # a BLAS does not start threads for them
        return np.ascontiguousarray(a @ b)
    from scipy.linalg import blas

    gemm = blas.dgemm if a.dtype == np.float64 else blas.sgemm

    def operand(m):  # m for Fortran BLAS without a copy: (array, transpose flag)
        if m.flags.f_contiguous:
            return m, 0
        if m.flags.c_contiguous:
            return m.T, 1
        return np.asfortranarray(m), 0

    # (a @ b)^T = b^T a^T, computed in Fortran order, is a @ b in C order
    (p, tp), (q, tq) = operand(b.T), operand(a.T)
    return gemm(1.0, p, q, trans_a=tp, trans_b=tq).T


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of `a` (`a` itself stays writable for the kernels)."""
    v = a.view()
    v.flags.writeable = False
    return v


class Trace:
    """Everything the forward pass computed, kept for the backward pass and for analysis.

    :meth:`Cell.forward` makes traces; one can also be built from arrays (for instance
    those of another trace), and every array is then checked against the cell: its dtype,
    its shape and the shapes of the others.  A trace owns its arrays; the attributes below
    are read-only views, so a trace cannot be edited behind the back of its backward pass.

    Parameters
    ----------
    cell : Cell
        The cell that ran.
    x : ndarray, shape (T, B, D)
        The input sequence.
    states : ndarray, shape (S, T + 1, B, H)
        Every state component at every step; ``states[:, 0]`` is the initial state.
    ax : ndarray, shape (T, B, G*H)
        Input pre-activations ``x_t W_ih^T + b_ih``.
    ah1, ah2 : ndarray, shapes (T, B, G1*H) and (T, B, G2*H)
        Recurrent pre-activations of the first- and second-stage gates.
    u : ndarray, shape (T, B, H) or (T, B, 0)
        Recurrent input of two-stage cells (size 0 for one-stage cells).
    params : dict of ndarray, optional
        The parameters the arrays were computed with (default: a copy of ``cell.params``).

    Attributes
    ----------
    cell, x, states, ax, ah1, ah2, u
        As above (arrays read-only).
    params : dict of ndarray
        The parameters of the forward pass (read-only copies): :meth:`Cell.backward`
        differentiates the computation that made the trace, with these, even if
        ``cell.params`` changed since.

    Raises
    ------
    ShapeError, DTypeError, InvalidArgumentError
        If an array does not fit the cell or the others.
    """

    __slots__ = ("_cell", "_arrays", "_params", "_saved", "_intermediates")

    #: the arrays every trace can give (a trace of :meth:`Cell.forward` may keep only x,
    #: states and the saved values, and recompute the pre-activations when asked)
    _NAMES = ("x", "states", "ax", "ah1", "ah2", "u")

    def __init__(self, cell: "Cell", x, states, ax, ah1, ah2, u, *, params=None):
        as_cell(cell)
        arrays = dict(x=x, states=states, ax=ax, ah1=ah1, ah2=ah2, u=u)
        for name, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise DTypeError(f"`{name}` must be a numpy array; got {type(value).__name__}")
        arrays = {k: np.array(v, dtype=v.dtype, order="C", copy=True) for k, v in arrays.items()}
        params = cell.params if params is None else params
        self._init(cell, arrays, cell.checked_params(params, copy=True), None)

    @classmethod
    def _of_forward(cls, cell, arrays: dict, params: dict, saved) -> "Trace":
        """The trace of :meth:`Cell.forward`, which made the arrays and owns them."""
        self = object.__new__(cls)
        self._init(cell, arrays, params, saved)
        return self

    def _init(self, cell, arrays, params, saved):
        _check_trace_arrays(cell, arrays, saved)
        self._cell = cell
        self._arrays = arrays
        self._params = params
        self._saved = saved
        self._intermediates = None

    # ------------------------------------------------------------------ views
    cell = property(lambda self: self._cell, doc="The cell that ran.")
    x = property(lambda self: _readonly(self._arrays["x"]), doc="Input (T, B, D).")
    states = property(lambda self: _readonly(self._arrays["states"]),
                      doc="State components (S, T + 1, B, H); ``states[:, 0]`` is the initial state.")
    ax = property(lambda self: _readonly(self.kernel_arrays()["ax"]),
                  doc="Input pre-activations (T, B, G*H).")
    ah1 = property(lambda self: _readonly(self.kernel_arrays()["ah1"]),
                   doc="Recurrent pre-activations of the stage-one gates (T, B, G1*H).")
    ah2 = property(lambda self: _readonly(self.kernel_arrays()["ah2"]),
                   doc="Recurrent pre-activations of the stage-two gates (T, B, G2*H).")
    u = property(lambda self: _readonly(self.kernel_arrays()["u"]),
                 doc="Recurrent input of two-stage cells (T, B, H), or (T, B, 0).")

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the trace holds now (x, states, saved values, and the
        pre-activations when kept or recomputed; not the parameters)."""
        held = sum(a.nbytes for a in self._arrays.values())
        return held + (0 if self._saved is None else self._saved.nbytes)

    @property
    def params(self) -> dict:
        """The parameters of the forward pass, ``{name: read-only array}``."""
        return {k: _readonly(v) for k, v in self._params.items()}

    @property
    def length(self) -> int:
        """Number of steps T."""
        return self._arrays["x"].shape[0]

    @property
    def batch_size(self) -> int:
        """Number of sequences B."""
        return self._arrays["x"].shape[1]

    @property
    def h(self) -> np.ndarray:
        """Hidden states h_1 ... h_T, shape (T, B, H) (a read-only view)."""
        return _readonly(self._arrays["states"][0, 1:])

    def component(self, name: str) -> np.ndarray:
        """The sequence of state component `name` (``"h"``, ``"c"``), shape (T, B, H)."""
        return _readonly(self._arrays["states"][self._index(name), 1:])

    @property
    def final(self) -> dict[str, np.ndarray]:
        """The state after the last step, ``{component: (B, H)}``."""
        st = self._arrays["states"]
        return {s: _readonly(st[k, -1]) for k, s in enumerate(self._cell.spec.state)}

    @property
    def initial(self) -> dict[str, np.ndarray]:
        """The initial state, ``{component: (B, H)}``."""
        st = self._arrays["states"]
        return {s: _readonly(st[k, 0]) for k, s in enumerate(self._cell.spec.state)}

    def intermediate(self, name: str) -> np.ndarray:
        """A named intermediate of the equations (a gate value such as ``"f"``), (T, B, H)."""
        names = self._cell.spec.intermediates
        if not isinstance(name, str) or name not in names:
            raise InvalidArgumentError(
                f"`name` {name!r} is not an intermediate of cell {self._cell.spec.name!r}; "
                f"expected one of {list(names)}"
            )
        if self._intermediates is None:
            a = self.kernel_arrays()
            T, B, H = self.length, self.batch_size, self._cell.hidden_size
            out = np.empty((len(names), T, B, H), dtype=a["x"].dtype)
            self._cell.kernels.intermediates_kernel(a["ax"], a["ah1"], a["ah2"], a["states"],
                                                    self.unit_params(), out)
            self._intermediates = out
        return _readonly(self._intermediates[names.index(name)])

    def slice(self, t0: int, t1: int) -> "Trace":
        """The trace of steps ``t0 .. t1 - 1`` alone (its initial state is ``s_{t0}``).

        ``cell.backward(trace.slice(t, t + 1), dstate=g)`` carries a state gradient back
        one step.  The arrays are copied.
        """
        T = self.length
        for name, v in (("t0", t0), ("t1", t1)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise InvalidArgumentError(f"`{name}` must be an integer; got {v!r}")
        if not 0 <= t0 < t1 <= T:
            raise InvalidArgumentError(
                f"`t0`, `t1` must satisfy 0 <= t0 < t1 <= T = {T}; got t0 = {t0}, t1 = {t1}")
        a = self._arrays
        arrays = {k: np.ascontiguousarray(a[k][t0:t1]) for k in ("x", "ax", "ah1", "ah2", "u")
                  if k in a}
        arrays["states"] = np.ascontiguousarray(a["states"][:, t0:t1 + 1])
        saved = None if self._saved is None else np.ascontiguousarray(self._saved[t0:t1])
        return Trace._of_forward(self._cell, arrays, self._params, saved)

    # ------------------------------------------------------------------ kernels' side
    def kernel_arrays(self) -> dict:
        """The trace's own arrays, writable, for the kernels (internal interface: callers
        must not change them).  Keys ``x, states, ax, ah1, ah2, u``: pre-activations the
        forward pass did not keep are recomputed here, once (two matrix products:
        ``x W_ih^T + b_ih`` and ``h_{t-1} W_hh^T + b_hh``), and kept from then on."""
        a = self._arrays
        if any(k not in a for k in ("ax", "ah1", "ah2", "u")):
            a.update(_preactivations(self._cell, self._params, a))
        return a

    def backward_arrays(self) -> dict:
        """What the backward pass reads (internal interface): :meth:`kernel_arrays` without
        the pre-activations the trace does not keep (which the backward pass does not
        read when the forward pass saved its function values)."""
        return self._arrays

    def kernel_params(self) -> dict:
        """The forward pass's parameters, writable, for the kernels (internal interface)."""
        return self._params

    def unit_params(self) -> np.ndarray:
        """The per-unit parameters stacked for the kernels: ``(P, H)`` in ``spec.params``
        order (internal interface)."""
        return self._cell.unit_params(self._params)

    @property
    def saved(self) -> np.ndarray | None:
        """The function values the forward pass saved for the backward pass, (T, B, K*H),
        or None (a trace built from arrays: backward recomputes them)."""
        return self._saved

    def _index(self, name):
        state = self._cell.spec.state
        if not isinstance(name, str) or name not in state:
            raise InvalidArgumentError(
                f"`name` {name!r} is not a state component of {self._cell.spec.name!r}; "
                f"expected one of {list(state)}"
            )
        return state.index(name)

    def __repr__(self) -> str:
        return (f"Trace({self._cell.spec.name!r}, T={self.length}, B={self.batch_size}, "
                f"H={self._cell.hidden_size}, dtype={self._cell.dtype.name})")


def _preactivations(cell, params: dict, arrays: dict) -> dict:
    """The pre-activations of a one-stage cell's trace that lacks them, from x and the
    states: ``ax = x W_ih^T + b_ih``, ``ah1 = h_{t-1} W_hh^T + b_hh`` (ah2 and u empty)."""
    spec, H, D = cell.spec, cell.hidden_size, cell.input_size
    x, st = arrays["x"], arrays["states"]
    T, B = x.shape[:2]
    G = spec.num_gates
    out = {}
    if "ax" not in arrays:
        ax = _matmul(x.reshape(T * B, D), params["weight_ih"].T)
        ax += params["bias_ih"]
        out["ax"] = ax.reshape(T, B, G * H)
    if "ah1" not in arrays:
        ah1 = _matmul(np.ascontiguousarray(st[0, :T]).reshape(T * B, H), params["weight_hh"].T)
        ah1 += params["bias_hh"]
        out["ah1"] = ah1.reshape(T, B, G * H)
    out.setdefault("ah2", np.empty((T, B, 0), dtype=cell.dtype))
    out.setdefault("u", np.empty((T, B, 0), dtype=cell.dtype))
    for k in ("ah2", "u"):
        if k in arrays:
            del out[k]
    return out


def _check_trace_arrays(cell, arrays: dict, saved) -> None:
    """Every array of a trace against the cell and the others: dtype, shape, layout."""
    spec, H, D, dt = cell.spec, cell.hidden_size, cell.input_size, cell.dtype
    G, G1, S = spec.num_gates, len(spec.stage1), len(spec.state)
    x = arrays["x"]
    if x.ndim != 3 or x.shape[2] != D or x.shape[0] < 1 or x.shape[1] < 1:
        raise ShapeError(f"`x` must have shape (T, B, D) with D = {D}; got {x.shape}")
    T, B = x.shape[:2]
    want = {"x": (T, B, D), "states": (S, T + 1, B, H), "ax": (T, B, G * H),
            "ah1": (T, B, G1 * H), "ah2": (T, B, (G - G1) * H),
            "u": (T, B, H if spec.stage2 else 0)}
    for name, shape in want.items():
        if name not in arrays:  # a pre-activation the forward pass did not keep
            continue
        a = arrays[name]
        if a.dtype != dt:
            raise DTypeError(f"`{name}` has dtype {a.dtype}; expected {dt} (the cell's dtype)")
        if a.shape != shape:
            raise ShapeError(
                f"`{name}` must have shape {shape} for cell {spec.name!r} (H = {H}) and x of "
                f"shape {x.shape}; got {a.shape}")
        if not a.flags.c_contiguous:
            raise ShapeError(f"`{name}` must be C-contiguous")
    if saved is not None and (saved.dtype != dt or saved.ndim != 3 or saved.shape[:2] != (T, B)
                              or not saved.flags.c_contiguous):
        raise ShapeError(f"saved values of shape {saved.shape} do not fit a trace of {T} steps")


@dataclass(eq=False, repr=False)
class Grads(Displayed):
    """Gradients from :meth:`Cell.backward`.

    Attributes
    ----------
    params : dict of ndarray
        Same keys and shapes as ``Cell.params``.
    x : ndarray, shape (T, B, D)
        Gradient with respect to the inputs.
    state0 : dict of ndarray
        Gradient with respect to each initial state component, ``(B, H)`` each.
    """

    params: dict
    x: np.ndarray
    state0: dict

    _shown = ("params", "x", "state0")

    def _frame_columns(self) -> dict:
        """One row per gradient (parameters, then x and the initial state): its shape,
        2-norm and largest magnitude."""
        items = [*self.params.items(), ("x", self.x),
                 *((f"state0[{k}]", v) for k, v in self.state0.items())]
        return {"name": [k for k, _ in items], "shape": [str(np.shape(v)) for _, v in items],
                "norm": [float(np.linalg.norm(v)) for _, v in items],
                "max_abs": [float(np.max(np.abs(v))) if np.size(v) else 0.0 for _, v in items]}


class Cell:
    """A recurrent cell with parameters: forward and backward passes on the CPU.

    Parameters
    ----------
    cell : str or CellSpec
        A catalogue name (see :func:`gradflow.cells.names`) or a spec.
    input_size, hidden_size : int
        D and H.
    dtype : numpy.float64 or numpy.float32
        Precision of parameters and computations.
    seed : int, optional
        Seed of the parameter initialisation (``numpy.random.default_rng``).
    forget_bias : float, optional
        Set the forget gate's bias (``bias_ih`` rows; ``bias_hh`` rows to 0); for cells
        with a forget-like gate (``spec.forget_gate``: f for LSTMs, z for GRUs).
    init : {"pytorch", "orthogonal"}
        ``"pytorch"``: every parameter uniform in ``[-1/sqrt(H), 1/sqrt(H)]`` as
        ``torch.nn.LSTM`` etc.; ``"orthogonal"``: each gate's block of ``weight_hh``
        a random orthogonal matrix, the rest as ``"pytorch"``.
    spectral_radius : float, optional
        Rescale each gate's block of ``weight_hh`` to this spectral radius.

    Attributes
    ----------
    params : dict of ndarray
        ``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H,)``,
        ``bias_hh (G*H,)`` with gate blocks in ``spec.gates`` order, plus per-unit
        parameters ``(H,)``.  Edit in place or assign arrays of the same shape.

    Examples
    --------
    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("lstm", input_size=3, hidden_size=4, seed=0)
    >>> x = np.zeros((5, 2, 3))
    >>> trace = cell.forward(x)
    >>> trace.h.shape
    (5, 2, 4)
    >>> grads = cell.backward(trace, dh=np.ones_like(trace.h))
    >>> grads.params["weight_hh"].shape
    (16, 4)
    """

    def __init__(self, cell, input_size: int, hidden_size: int, *, dtype=np.float64,
                 seed: int | None = None, forget_bias: float | None = None,
                 init: str = "pytorch", spectral_radius: float | None = None):
        self._spec: CellSpec = cells.get(cell)
        self._input_size = check.positive_int("input_size", input_size)
        self._hidden_size = check.positive_int("hidden_size", hidden_size)
        self._dtype = check.float_dtype("dtype", dtype)
        check.choice("init", init, _INITS)
        seed = check.seed("seed", seed)
        if forget_bias is not None:
            if self._spec.forget_gate is None:
                raise InvalidArgumentError(
                    f"`forget_bias` was given, but cell {self._spec.name!r} has no forget gate"
                )
            forget_bias = check.real("forget_bias", forget_bias)
        if spectral_radius is not None:
            spectral_radius = check.real("spectral_radius", spectral_radius, minimum=0.0)
        check.fits_in_memory("the parameters", self.num_parameters * self._dtype.itemsize * 3,
                             f"input_size={self._input_size}, hidden_size={self._hidden_size}")
        self.params = self._init_params(seed, init, forget_bias, spectral_radius)

    spec = property(lambda self: self._spec, doc="The cell's :class:`CellSpec`.")
    input_size = property(lambda self: self._input_size, doc="D, the input size.")
    hidden_size = property(lambda self: self._hidden_size, doc="H, the number of units.")
    dtype = property(lambda self: self._dtype, doc="float64 or float32.")

    # ------------------------------------------------------------------ parameters
    def _init_params(self, seed, init, forget_bias, spectral_radius):
        rng = np.random.default_rng(seed)
        G, H, D = self.spec.num_gates, self.hidden_size, self.input_size
        k = 1.0 / np.sqrt(H)

        def uniform(*shape):
            return rng.uniform(-k, k, size=shape)

        p = {
            "weight_ih": uniform(G * H, D),
            "weight_hh": uniform(G * H, H),
            "bias_ih": uniform(G * H),
            "bias_hh": uniform(G * H),
        }
        for name in self.spec.params:
            p[name] = uniform(H)
        if init == "orthogonal":
            for g in range(G):
                q, r = np.linalg.qr(rng.standard_normal((H, H)))
                p["weight_hh"][g * H:(g + 1) * H] = q * np.sign(np.diag(r))
        if spectral_radius is not None:
            for g in range(G):
                block = p["weight_hh"][g * H:(g + 1) * H]
                rho = np.max(np.abs(np.linalg.eigvals(block)))
                block *= spectral_radius / rho if rho > 0 else 0.0
        if forget_bias is not None:
            rows = self.gate_slice(self.spec.forget_gate)
            p["bias_ih"][rows] = forget_bias
            p["bias_hh"][rows] = 0.0
        return {name: np.ascontiguousarray(v, dtype=self.dtype) for name, v in p.items()}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The expected shape of every parameter."""
        G, H, D = self.spec.num_gates, self.hidden_size, self.input_size
        shapes = {"weight_ih": (G * H, D), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
        shapes.update({name: (H,) for name in self.spec.params})
        return shapes

    def gate_slice(self, gate: str) -> slice:
        """Rows of ``weight_ih``, ``weight_hh`` and the biases that belong to `gate`."""
        if not isinstance(gate, str) or gate not in self.spec.gates:
            raise InvalidArgumentError(
                f"`gate` {gate!r} is not a gate of {self.spec.name!r}; expected one of {list(self.spec.gates)}"
            )
        k, H = self.spec.gates.index(gate), self.hidden_size
        return slice(k * H, (k + 1) * H)

    @property
    def num_parameters(self) -> int:
        """The number of scalar parameters."""
        return int(sum(np.prod(s) for s in self.param_shapes().values()))

    def checked_params(self, params: dict | None = None, *, copy: bool = False) -> dict:
        """`params` (default ``self.params``) checked against :meth:`param_shapes`: C-contiguous
        arrays of the cell's dtype, finite; with `copy`, copies the cell does not share.

        This is the interface through which the analytics and training read parameters.

        Raises
        ------
        InvalidArgumentError, ShapeError, DTypeError, NonFiniteError
            Naming the parameter.
        """
        params = self.params if params is None else params
        shapes = self.param_shapes()
        if not isinstance(params, dict) or set(params) != set(shapes):
            keys = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise InvalidArgumentError(f"`params` has keys {keys}; expected {sorted(shapes)}")
        out = {}
        for name, shape in shapes.items():
            a = check.array(f"params['{name}']", params[name], dtype=self.dtype, shape=shape)
            out[name] = a.copy() if copy and a is params[name] else a
        return out

    def unit_params(self, params: dict | None = None) -> np.ndarray:
        """The per-unit parameters (peepholes ...) stacked for the kernels: ``(P, H)`` in
        ``spec.params`` order (``(0, H)`` for cells without them)."""
        params = self.params if params is None else params
        if not self.spec.params:
            return np.zeros((0, self.hidden_size), dtype=self.dtype)
        return np.ascontiguousarray(np.stack([params[n] for n in self.spec.params]), dtype=self.dtype)

    def copy(self) -> "Cell":
        """A copy with its own parameter arrays."""
        return self._derived(self.dtype)

    def astype(self, dtype) -> "Cell":
        """A copy in another precision."""
        return self._derived(check.float_dtype("dtype", dtype))

    def _derived(self, dtype) -> "Cell":
        new = object.__new__(Cell)
        params = {k: np.array(v, dtype=dtype, copy=True) for k, v in self.params.items()}
        new.__dict__.update(self.__dict__, _dtype=dtype, params=params)
        return new

    @property
    def kernels(self):
        """The compiled kernel module of this cell's spec and dtype."""
        cached = self.__dict__.get("_kernel_module")
        if cached is not None and cached[0] == self.dtype:
            return cached[1]  # finding it by its key costs a hash: tens of microseconds
        from .codegen import load

        module = load(self.spec, self.dtype)
        self._kernel_module = (self.dtype, module)
        return module

    def __getstate__(self) -> dict:
        # the kernel module is found again after unpickling; a module does not pickle
        state = dict(self.__dict__)
        state.pop("_kernel_module", None)
        return state

    def __repr__(self) -> str:
        return (
            f"Cell({self.spec.name!r}, input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"dtype={self.dtype.name})"
        )

    # ------------------------------------------------------------------ state
    def state_array(self, name: str, value, batch: int) -> np.ndarray:
        """A state given as None, an array (single-component cells), a tuple or a dict, as
        one array (S, B, H) of the cell's dtype (zeros where not given); `name` is the
        argument's name in error messages.  Internal interface (checkers, networks)."""
        S, H = len(self.spec.state), self.hidden_size
        out = np.zeros((S, batch, H), dtype=self.dtype)
        if value is None:
            return out
        comps = self.spec.state
        if isinstance(value, dict):
            unknown = set(value) - set(comps)
            if unknown:
                raise InvalidArgumentError(
                    f"`{name}` has keys {sorted(unknown)}, which are not state components; "
                    f"expected some of {list(comps)}"
                )
            items = value.items()
        elif isinstance(value, (tuple, list)):
            if len(value) != S:
                raise ShapeError(
                    f"`{name}` must have {S} components {comps}; got a sequence of {len(value)}"
                )
            items = zip(comps, value)
        else:
            if S != 1:
                raise ShapeError(
                    f"`{name}` must be a tuple or dict of the components {comps} for cell "
                    f"{self.spec.name!r}; got a single array"
                )
            items = [(comps[0], value)]
        for comp, v in items:
            if v is None:
                continue
            out[comps.index(comp)] = check.array(
                f"{name}['{comp}']", v, dtype=self.dtype, shape=(batch, H))
        return out

    # ------------------------------------------------------------------ passes
    def forward(self, x, state0=None, *, checkpoint=None) -> "Trace | CheckpointedTrace":
        """Run the cell over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, B, D)
            Time-major input, of the cell's dtype.
        state0 : array, tuple or dict, optional
            Initial state: ``(B, H)`` per component, as an array (single-component cells),
            a tuple in ``spec.state`` order, or a dict by name.  Zeros by default.
        checkpoint : int or True, optional
            Keep only the state every `checkpoint` steps (``True``: every ceil(sqrt(T))
            steps) and the outputs h, and return a :class:`CheckpointedTrace`:
            :meth:`backward` then runs each stretch's forward pass again, so that what
            it holds besides x, h and the gradients grows like sqrt(T) rather than T
            (at the cost of a second forward pass).

        Returns
        -------
        Trace or CheckpointedTrace
            ``trace.h`` is ``(T, B, H)``; ``trace.final`` the last state.

        Raises
        ------
        NonFiniteError
            If a state becomes NaN or infinite, with the step where it first did.

        Notes
        -----
        A trace keeps x, the states and the function values the backward pass reads
        (gate values, tanh c ...); the pre-activations ``ax``, ``ah1`` are computed a few
        steps at a time and not kept when the backward pass does not need them (they are
        recomputed, once, if asked for).
        """
        D = self.input_size
        spec, H = self.spec, self.hidden_size
        G = spec.num_gates
        if checkpoint is not None and not (checkpoint is True):
            checkpoint = check.positive_int("checkpoint", checkpoint)
        given = x
        if isinstance(x, np.ndarray) and x.ndim == 3:
            # states, pre-activations, recurrent input and saved values: at most (S + 4G + 1)
            # numbers per unit and step; refused before `x` is even copied
            T, B, _ = x.shape
            check.fits_in_memory("the forward pass's trace",
                                 T * B * H * (len(spec.state) + 4 * G + 1) * self.dtype.itemsize,
                                 f"T={T}, B={B}, H={H}")
        x = check.array("x", x, dtype=self.dtype, shape=(None, None, D),
                        hint="x is time-major (T, B, D); for one sequence use x[:, None, :]")
        if x is given:
            x = x.copy()  # the trace owns its input: later edits of `x` do not reach it
        T, B, _ = x.shape
        p = self.checked_params(copy=True)  # the trace keeps what it was computed with
        s0 = self.state_array("state0", state0, B)
        if checkpoint is not None:
            every = math.isqrt(T - 1) + 1 if checkpoint is True else min(checkpoint, T)
            return self._forward_checkpointed(x, s0, p, every)
        states = np.empty((len(spec.state), T + 1, B, H), dtype=self.dtype)
        states[:, 0] = s0
        arrays = self.run_forward(x, p, states)
        self._check_states(states)
        saved = arrays.pop("saved")
        return Trace._of_forward(self, arrays, p, saved)

    def _check_states(self, states) -> None:
        """Raise NonFiniteError at the first step where a state is not finite."""
        spec = self.spec
        bad = None if _all_finite(states[:, 1:]) else check.first_nonfinite(states[:, 1:].swapaxes(0, 1))
        if bad is not None:
            comp = [s for k, s in enumerate(spec.state) if not np.isfinite(states[k, bad + 1]).all()]
            check.raise_nonfinite(
                f"forward pass of {spec.name!r}", bad, comp[0],
                "The recurrence diverged; reduce the weights or the input scale.")

    def _scan(self, x, states, p, saved, keep) -> dict:
        """Run the forward kernel over x (T, B, D) from states[:, 0]; writes states[:, 1:]
        and, when it has T rows, saved.  Returns the trace's arrays: x, states and the
        pre-activations named in `keep` (the others are computed a chunk of steps at a
        time, in buffers reused from chunk to chunk)."""
        spec, H, D = self.spec, self.hidden_size, self.input_size
        G, G1 = spec.num_gates, len(spec.stage1)
        T, B, _ = x.shape
        dt = self.dtype
        kernels = self.kernels
        blocks = _threads.row_blocks(B, T * H)
        n = len(blocks)
        whole = "u" in keep  # two-stage cells, or cells without saved values: all at once
        step = T if whole else _chunk_steps(T, B * G * H * dt.itemsize)
        w, b = p["weight_hh"], p["bias_hh"]
        prm = self.unit_params(p)

        def buffer(name, width):
            return np.empty((T if name in keep else step, B, width), dtype=dt)

        ah1 = buffer("ah1", G1 * H)
        ah2 = buffer("ah2", (G - G1) * H)
        u = buffer("u", H if spec.stage2 else 0)
        ax = None
        packs = _packed_weights(w[: G1 * H], w[G1 * H:], blocks, transpose=True)
        with _threads.single_threaded_blas(n > 1):
            if "ax" in keep:
                ax = _matmul(x.reshape(T * B, D), p["weight_ih"].T, n).reshape(T, B, G * H)
            for t0 in range(0, T, step):
                t1 = min(T, t0 + step)
                m = t1 - t0

                def rows(a, name):
                    return a[t0:t1] if name in keep else a[:m]

                if "ax" in keep:
                    axc = ax[t0:t1]
                else:
                    # x W_ih^T here; the kernel adds bias_ih to each step's rows while
                    # they are in cache
                    axc = _matmul(x[t0:t1].reshape(m * B, D), p["weight_ih"].T, n).reshape(
                        m, B, G * H)
                sv = saved[t0:t1] if saved.shape[0] == T else saved
                args = (axc, p["bias_ih"], w[: G1 * H], b[: G1 * H], w[G1 * H:], b[G1 * H:], prm,
                        states if m == T else states[:, t0:t1 + 1], rows(ah1, "ah1"),
                        rows(ah2, "ah2"), rows(u, "u"), sv)
                _threads.run_blocks(
                    lambda lo, hi, a=args: kernels.forward_kernel(*a, *packs[(lo, hi)], lo, hi),
                    blocks)
        arrays = dict(x=x, states=states)
        arrays.update({k: v for k, v in (("ax", ax), ("ah1", ah1), ("ah2", ah2), ("u", u))
                       if k in keep})
        return arrays

    def _forward_checkpointed(self, x, s0, p, every) -> "CheckpointedTrace":
        """The forward pass keeping h and the state every `every` steps."""
        spec, H = self.spec, self.hidden_size
        T, B, _ = x.shape
        S = len(spec.state)
        n_seg = -(-T // every)
        marks = np.empty((S, n_seg + 1, B, H), dtype=self.dtype)
        marks[:, 0] = s0
        h = np.empty((T, B, H), dtype=self.dtype)
        seg = np.empty((S, every + 1, B, H), dtype=self.dtype)
        none = np.empty((0, B, 0), dtype=self.dtype)   # no saved values
        for k in range(n_seg):
            t0, t1 = k * every, min(T, (k + 1) * every)
            st = seg[:, : t1 - t0 + 1]
            st[:, 0] = marks[:, k]
            self._scan(x[t0:t1], st, p, none, frozenset())
            try:
                self._check_states(st)
            except NonFiniteError as e:
                check.raise_nonfinite(f"forward pass of {spec.name!r}", t0 + e.step, e.component,
                                      "The recurrence diverged; reduce the weights or the input "
                                      "scale.")
            h[t0:t1] = st[0, 1:]
            marks[:, k + 1] = st[:, -1]
        return CheckpointedTrace._of_forward(self, x, h, marks, every, p)

    def run_forward(self, x: np.ndarray, params: dict, states: np.ndarray) -> dict:
        """The forward pass on arrays already checked (internal interface: the online
        training of :mod:`gradflow.reproduce` calls it for every sequence, without the
        checks of :meth:`forward`).

        Parameters
        ----------
        x : ndarray, shape (T, B, D)
            C-contiguous, of the cell's dtype.
        params : dict
            As :meth:`checked_params` returns them.
        states : ndarray, shape (S, T + 1, B, H)
            C-contiguous; ``states[:, 0]`` holds the initial state, the rest is written.

        Returns
        -------
        dict
            ``x, states``, the pre-activations a trace keeps, and ``saved`` (the function
            values the backward pass reads); no check for non-finite values is made.
        """
        T, B, _ = x.shape
        # function values (gates, tanh c ...) kept for the backward pass, which then
        # evaluates no exp or tanh
        saved = np.empty((T, B, self.kernels.NUM_SAVED * self.hidden_size), dtype=self.dtype)
        arrays = self._scan(x, states, params, saved, _kept(self.spec, self.kernels))
        arrays["saved"] = saved
        return arrays

    def backward(self, trace, dh=None, dstate=None, *, truncate: bool = False) -> Grads:
        """Backpropagation through time.

        Parameters
        ----------
        trace : Trace or CheckpointedTrace
            From :meth:`forward` of this cell.  The gradients are those of the computation
            that made the trace, with the parameters the forward pass used (the trace keeps
            a copy): changing ``cell.params`` after the forward pass does not change them.
            A :class:`CheckpointedTrace`'s stretches are run forward again, last first.
        dh : array_like, shape (T, B, H), optional
            dL/dh_t for every step (zeros by default).
        dstate : array, tuple or dict, optional
            dL/d(final state) per component, ``(B, H)`` each, added to what flows back.
        truncate : bool
            The truncated gradient of Hochreiter & Schmidhuber (1997) instead of the full
            one: error that reaches a net input (a gate's or the cell input's
            pre-activation) changes the weights into it but does not flow further back in
            time, so error crosses from one step to the previous only along the state's
            own self-connections (for the 1997 cell, the constant error carousel:
            ``∂c_t/∂c_{t-1} = I``).  The partials it uses are derived from the equations
            (:meth:`~gradflow.symbolic.CellSpec.truncation`).  One-stage cells only.

        Returns
        -------
        Grads
            Gradients of every parameter, of the input and of the initial state (with
            `truncate`, those of the truncated gradient; ``state0["h"]`` is then zero for
            LSTMs).

        Examples
        --------
        With the truncated gradient, error entering the 1997 cell's state at the last step
        reaches the first step unchanged, whatever the weights:

        >>> import numpy as np, gradflow
        >>> cell = gradflow.Cell("lstm1997", 2, 3, seed=0)
        >>> trace = cell.forward(np.random.default_rng(0).standard_normal((50, 1, 2)))
        >>> dc = np.array([[0.5, -1.0, 2.0]])
        >>> grads = cell.backward(trace, dstate={"c": dc}, truncate=True)
        >>> grads.state0["c"], grads.state0["h"]
        (array([[ 0.5, -1. ,  2. ]]), array([[0., 0., 0.]]))
        """
        truncate = check.flag("truncate", truncate)
        if truncate:
            self.spec.truncation()  # refuses two-stage cells, saying why
        if not isinstance(trace, (Trace, CheckpointedTrace)):
            raise InvalidArgumentError(
                f"`trace` must be the Trace returned by Cell.forward; got {type(trace).__name__}"
            )
        if trace.cell is not self:
            raise InvalidArgumentError(
                "`trace` was computed by another Cell; call backward on the cell that ran forward"
            )
        T, B = trace.length, trace.batch_size
        spec, H = self.spec, self.hidden_size
        if dh is None:
            dh = np.zeros((T, B, H), dtype=self.dtype)
        else:
            dh = check.array("dh", dh, dtype=self.dtype, shape=(T, B, H),
                             hint="dh must match the trace: (T, B, H) = trace.h.shape")
        dsT = self.state_array("dstate", dstate, B)
        p = trace.kernel_params()  # the parameters the forward pass used
        acc = _GradSums(self, p, T, B)
        if isinstance(trace, Trace):
            ds0 = self._backward_span(trace.backward_arrays(), trace.saved, trace.unit_params(),
                                      p, dh, dsT, acc, 0, truncate)
        else:
            ds0 = dsT
            every = trace.every
            saved = np.empty((every, B, self.kernels.NUM_SAVED * H), dtype=self.dtype)
            seg = np.empty((len(spec.state), every + 1, B, H), dtype=self.dtype)
            prm = self.unit_params(p)
            x = trace.kernel_x()
            marks = trace.checkpoints
            for k in range(marks.shape[1] - 2, -1, -1):
                t0, t1 = k * every, min(T, (k + 1) * every)
                st = seg[:, : t1 - t0 + 1]
                st[:, 0] = marks[:, k]
                sv = saved[: t1 - t0]
                arrays = self._scan(x[t0:t1], st, p, sv, _kept(spec, self.kernels))
                ds0 = self._backward_span(arrays, sv, prm, p, dh[t0:t1], ds0, acc, t0, truncate)
        return acc.grads(ds0)

    def run_backward(self, arrays: dict, params: dict, dh: np.ndarray, dsT: np.ndarray, *,
                     truncate: bool = False) -> tuple[dict, np.ndarray, np.ndarray]:
        """Backpropagation through time on arrays already checked (internal interface, the
        counterpart of :meth:`run_forward`).

        Parameters
        ----------
        arrays : dict
            What :meth:`run_forward` returned (without ``saved`` the function values are
            recomputed).
        params : dict
            The parameters of that forward pass.
        dh : ndarray, shape (T, B, H)
        dsT : ndarray, shape (S, B, H)
            dL/d(final state).
        truncate : bool
            The truncated gradient (the caller has checked that the cell allows it).

        Returns
        -------
        (grads, dx, ds0)
            The parameters' gradients (keys of ``params``), dL/dx (T, B, D) and
            dL/d(initial state) (S, B, H).

        Raises
        ------
        NonFiniteError
            If the gradient overflowed, with the step where it did.
        """
        T, B = arrays["x"].shape[:2]
        acc = _GradSums(self, params, T, B)
        ds0 = self._backward_span(arrays, arrays.get("saved"), self.unit_params(params), params,
                                  dh, dsT, acc, 0, truncate)
        g = acc.grads(ds0)
        return g.params, g.x, ds0

    def _backward_span(self, arrays, saved, prm, p, dh, dsT, acc, offset,
                       truncate: bool = False) -> np.ndarray:
        """Backpropagation through the steps of `arrays` (a trace's, or a stretch's of
        a checkpointed one), a chunk of steps at a time, last chunk first.

        The gradients of the pre-activations of a chunk live in buffers reused from
        chunk to chunk: each chunk adds its share of the weight gradients to `acc` and
        writes its rows of dx.  Pre-activations the arrays lack are computed for the
        chunk when the step function reads them.  `offset`: the stretch's first step in
        the whole sequence (for error messages).  `truncate`: the 1997 truncated gradient.
        Returns dL/d(initial state) (S, B, H).
        """
        spec, H = self.spec, self.hidden_size
        G, G1 = spec.num_gates, len(spec.stage1)
        x, states = arrays["x"], arrays["states"]
        T, B = x.shape[:2]
        dt = self.dtype
        kernels = self.kernels
        if saved is None or saved.shape[2] != kernels.NUM_SAVED * H or saved.shape[0] != T:
            saved = np.empty((0, B, 0), dtype=dt)  # recompute the function values
        use_saved = saved.shape[0] == T and kernels.NUM_SAVED > 0
        need_ax = not use_saved or kernels.SAVED_READS_AX
        need_ah = not use_saved or kernels.SAVED_READS_AH
        full = _chunk_steps(T, B * G * H * dt.itemsize)
        blocks = _threads.row_blocks(B, T * H)
        n = len(blocks)
        dax_buf = np.empty((min(full, T), B, G * H), dtype=dt)
        dah1_buf = dax_buf if kernels.DAH1_IS_DAX else np.empty((min(full, T), B, G1 * H), dtype=dt)
        dah2_buf = np.empty((min(full, T), B, (G - G1) * H), dtype=dt)
        scratch = None
        w = p["weight_hh"]
        packs = _packed_weights(w[: G1 * H], w[G1 * H:], blocks, transpose=False)
        ds = np.ascontiguousarray(dsT)
        with _threads.single_threaded_blas(n > 1):
            for t1 in range(T, 0, -full):
                t0 = max(0, t1 - full)
                m = t1 - t0
                pre = {k: v[t0:t1] for k, v in arrays.items() if k in ("ax", "ah1", "ah2", "u")}
                missing = {"ax", "ah1"} - set(pre)
                if missing:  # a one-stage cell's lean trace
                    if scratch is None:
                        scratch = np.empty((full, B, G * H), dtype=dt)
                    part = {"x": x[t0:t1], "states": states[:, t0:t1 + 1], **pre}
                    for name, needed in (("ax", need_ax), ("ah1", need_ah)):
                        if name in missing:
                            if needed:
                                other = "ah1" if name == "ax" else "ax"
                                pre[name] = _preactivations(self, p, {**part, other: None})[name]
                            else:
                                pre[name] = scratch[:m]   # the step function does not read it
                # a one-stage cell's lean trace keeps no (empty) stage-two arrays
                pre.setdefault("ah2", np.empty((m, B, 0), dtype=dt))
                pre.setdefault("u", pre["ah2"])
                ax, ah1, ah2, u = pre["ax"], pre["ah1"], pre["ah2"], pre["u"]
                dax, dah1, dah2 = dax_buf[:m], dah1_buf[:m], dah2_buf[:m]
                ds0 = np.empty_like(ds)
                sv = saved[t0:t1] if use_saved else saved
                args = (ax, ah1, ah2, u, states[:, t0:t1 + 1], sv, prm, w[: G1 * H], w[G1 * H:],
                        dh[t0:t1], ds, dax, dah1, dah2, ds0)
                _threads.run_blocks(
                    lambda lo, hi, a=args: acc.block(kernels, a, blocks, lo, hi, truncate,
                                                     packs[(lo, hi)]), blocks)
                if not acc.finite():
                    bad = check.first_nonfinite(dax, reverse=True)
                    check.raise_nonfinite(f"backward pass of {spec.name!r}", offset + t0 + bad,
                                          "pre-activation gradients",
                                          "The gradient overflowed while flowing back.")
                acc.add_products(x[t0:t1], states[0, t0:t1], u, dax, dah1, dah2, n)
                ds = ds0
        return ds


def _packed_weights(w1, w2, blocks, transpose: bool) -> dict:
    """{(lo, hi): (fn1, pk1, fn2, pk2)}: the kernels' per-step products by w1 and w2 (the
    recurrent weights of the two stages; transposed in the forward scan) for each block of
    rows, on weights packed once for the pass where that pays (:mod:`gradflow._blas`)."""
    return {(lo, hi): (*_blas.pack_weights(w1, hi - lo, transpose),
                       *_blas.pack_weights(w2, hi - lo, transpose)) for lo, hi in blocks}


#: bytes of a chunk of input pre-activations (or of their gradients) computed at once
CHUNK_BYTES = 8 * 2 ** 20


def _chunk_steps(T: int, bytes_per_step: int) -> int:
    """Steps per chunk: CHUNK_BYTES of pre-activations, at least 8 steps, at most T."""
    return int(max(1, min(T, max(8, CHUNK_BYTES // max(bytes_per_step, 1)))))


def _kept(spec, kernels) -> frozenset:
    """The pre-activations a trace keeps: those the backward pass reads (all of them for
    cells without saved values and two-stage cells; else those the saved values do not
    cover, such as the GRU's a_h of n)."""
    if spec.stage2 or kernels.NUM_SAVED == 0:
        return frozenset(("ax", "ah1", "ah2", "u"))
    return frozenset(name for name, read in (("ax", kernels.SAVED_READS_AX),
                                             ("ah1", kernels.SAVED_READS_AH)) if read)


class _GradSums:
    """The parameter gradients of a backward pass, accumulated chunk by chunk."""

    def __init__(self, cell, p, T, B):
        spec, H, D = cell.spec, cell.hidden_size, cell.input_size
        G = spec.num_gates
        self.cell, self.p, self.T, self.B = cell, p, T, B
        self.P = len(spec.params) * H
        n = len(_threads.row_blocks(B, 1 << 40))   # the most blocks any stretch may use
        # per block: dprm, and the bias gradients summed in the kernel (column sums of
        # dax, dah1 and dah2) while the rows are in cache
        self.acc = np.zeros((n, self.P + 2 * G * H), dtype=cell.dtype)
        self.w_ih = np.zeros((G * H, D), dtype=cell.dtype)
        self.w_hh = np.zeros((G * H, H), dtype=cell.dtype)
        self.dx = np.empty((T, B, D), dtype=cell.dtype)
        self.t1 = T   # rows of dx written so far: [t1, T)

    def block(self, kernels, args, blocks, lo, hi, truncate, packs):
        spec, H = self.cell.spec, self.cell.hidden_size
        G = spec.num_gates
        P = self.P
        a = self.acc[blocks.index((lo, hi))]
        kernels.backward_kernel(*args, a[:P].reshape(-1, H), a[P:P + G * H], a[P + G * H:],
                                truncate, *packs, lo, hi)

    def finite(self) -> bool:
        # a NaN or inf anywhere in dax makes its column sums (db_ih) non-finite
        G, H = self.cell.spec.num_gates, self.cell.hidden_size
        return bool(np.isfinite(self.acc[:, self.P:self.P + G * H]).all())

    def add_products(self, x, h_prev, u, dax, dah1, dah2, n):
        """The weight gradients and dx of a chunk of steps: ``W_ih += dax^T x``,
        ``W_hh += dah^T h_{t-1}`` (and ``dah2^T u``), ``dx = dax W_ih``."""
        spec, H, D = self.cell.spec, self.cell.hidden_size, self.cell.input_size
        G, G1 = spec.num_gates, len(spec.stage1)
        m, B = x.shape[:2]
        rows = m * B
        dax2 = dax.reshape(rows, G * H)
        self.w_ih += _matmul(dax2.T, x.reshape(rows, D), n)
        hp = np.ascontiguousarray(h_prev).reshape(rows, H)
        self.w_hh[: G1 * H] += _matmul(dah1.reshape(rows, G1 * H).T, hp, n)
        if spec.stage2:
            self.w_hh[G1 * H:] += _matmul(dah2.reshape(rows, (G - G1) * H).T,
                                          np.ascontiguousarray(u).reshape(rows, H), n)
        self.t1 -= m
        self.dx[self.t1:self.t1 + m] = _matmul(dax2, self.p["weight_ih"], n).reshape(m, B, D)

    def grads(self, ds0) -> Grads:
        cell = self.cell
        spec, H = cell.spec, cell.hidden_size
        G, G1 = spec.num_gates, len(spec.stage1)
        P = self.P
        acc = self.acc.sum(axis=0)
        dprm, db_ih, db_hh = acc[:P].reshape(-1, H), acc[P:P + G * H], acc[P + G * H:]
        if cell.kernels.DAH1_IS_DAX:
            db_hh[: G1 * H] = db_ih[: G1 * H]
        grads = {"weight_ih": self.w_ih, "bias_ih": db_ih, "weight_hh": self.w_hh,
                 "bias_hh": db_hh}
        for k, name in enumerate(spec.params):
            grads[name] = dprm[k].copy()
        state0 = {s: ds0[k] for k, s in enumerate(spec.state)}
        return Grads(params=grads, x=self.dx, state0=state0)


class CheckpointedTrace:
    """The forward pass of :meth:`Cell.forward` with ``checkpoint=``: the outputs h, the
    state every `every` steps, x and the parameters.  :meth:`Cell.backward` runs each
    stretch of `every` steps forward again (last first) and backpropagates through it,
    so that it holds one stretch's values at a time instead of the whole sequence's.

    Attributes
    ----------
    cell : Cell
    h : ndarray, shape (T, B, H)
        Hidden states h_1 ... h_T (read-only).
    x : ndarray, shape (T, B, D)
        The input (read-only).
    checkpoints : ndarray, shape (S, ceil(T / every) + 1, B, H)
        The state at steps 0, every, 2 every, ... and T (read-only).
    every : int
        Steps between two checkpoints.
    """

    __slots__ = ("_cell", "_x", "_h", "_marks", "_every", "_params")

    @classmethod
    def _of_forward(cls, cell, x, h, marks, every, params) -> "CheckpointedTrace":
        self = object.__new__(cls)
        self._cell, self._x, self._h, self._marks = cell, x, h, marks
        self._every, self._params = every, params
        return self

    cell = property(lambda self: self._cell, doc="The cell that ran.")
    x = property(lambda self: _readonly(self._x), doc="Input (T, B, D).")
    h = property(lambda self: _readonly(self._h), doc="Hidden states h_1 ... h_T (T, B, H).")
    checkpoints = property(lambda self: _readonly(self._marks),
                           doc="The state every `every` steps (S, K + 1, B, H).")
    every = property(lambda self: self._every, doc="Steps between two checkpoints.")
    length = property(lambda self: self._x.shape[0], doc="Number of steps T.")
    batch_size = property(lambda self: self._x.shape[1], doc="Number of sequences B.")

    @property
    def final(self) -> dict[str, np.ndarray]:
        """The state after the last step, ``{component: (B, H)}``."""
        return {s: _readonly(self._marks[k, -1]) for k, s in enumerate(self._cell.spec.state)}

    @property
    def params(self) -> dict:
        """The parameters of the forward pass, ``{name: read-only array}``."""
        return {k: _readonly(v) for k, v in self._params.items()}

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the trace holds (x, h and the checkpoints)."""
        return self._x.nbytes + self._h.nbytes + self._marks.nbytes

    def kernel_params(self) -> dict:
        """The forward pass's parameters, for the kernels (internal interface)."""
        return self._params

    def kernel_x(self) -> np.ndarray:
        """The input, writable, for the kernels (internal interface)."""
        return self._x

    def __repr__(self) -> str:
        return (f"CheckpointedTrace({self._cell.spec.name!r}, T={self.length}, "
                f"B={self.batch_size}, H={self._cell.hidden_size}, every={self._every})")


def as_cell(value, name: str = "cell") -> Cell:
    """`value`, if it is a :class:`Cell` (else an error that says how to build one)."""
    return check.instance(name, value, Cell,
                          "Build one with gradflow.Cell(name, input_size, hidden_size)")
