"""``from_torch`` / ``to_torch`` for single-layer ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.

The parameter names, shapes and gate orders of gradflow's ``rnn``, ``rnn-relu``, ``lstm``
and ``gru`` are PyTorch's, so conversion is a copy of four arrays.
"""

from __future__ import annotations

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, NonFiniteError

__all__ = ["from_torch", "to_torch"]

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "gradflow.interop needs PyTorch; install it with `pip install torch`"
        ) from None
    return torch


def _kind(module, torch) -> str:
    nn = torch.nn
    if isinstance(module, nn.LSTM):
        if module.proj_size:
            raise InvalidArgumentError(
                f"`module` is an LSTM with proj_size={module.proj_size}; expected proj_size=0"
            )
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return {"tanh": "rnn", "relu": "rnn-relu"}[module.nonlinearity]
    raise InvalidArgumentError(
        f"`module` must be a torch.nn.RNN, LSTM or GRU; got {type(module).__name__}"
    )


def from_torch(module):
    """A :class:`gradflow.Cell` with the parameters of a PyTorch recurrent module.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        Single layer, unidirectional, with biases; float32 or float64.  ``batch_first``
        only changes PyTorch's input layout: gradflow's ``forward`` is always time-major.

    Returns
    -------
    Cell
        ``"rnn"``, ``"rnn-relu"``, ``"lstm"`` or ``"gru"``, with copies of the weights.
    """
    torch = _torch()
    from ..cell import Cell

    name = _kind(module, torch)
    if module.num_layers != 1 or module.bidirectional or not module.bias:
        raise InvalidArgumentError(
            "`module` must have num_layers=1, bidirectional=False and bias=True; got "
            f"num_layers={module.num_layers}, bidirectional={module.bidirectional}, bias={module.bias}"
        )
    dtype = module.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise DTypeError(f"`module` has dtype {dtype}; expected torch.float32 or torch.float64")
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    params = {}
    for k in _NAMES:
        value = getattr(module, f"{k}_l0").detach().cpu().numpy().astype(np_dtype, copy=True)
        if not np.isfinite(value).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise NonFiniteError(
                f"`module`'s tensor {k}_l0 holds a non-finite value ({value[where]}) at index "
                f"{where}; expected finite weights", component=f"{k}_l0")
        params[k] = value
    cell = Cell(name, module.input_size, module.hidden_size, dtype=np_dtype)
    cell.params = params
    return cell


def to_torch(cell):
    """A PyTorch module with the parameters of a :class:`gradflow.Cell`.

    Only the cells PyTorch has: ``rnn``, ``rnn-relu`` (``nn.RNN``), ``lstm`` (``nn.LSTM``)
    and ``gru`` (``nn.GRU``).  The module is time-major (``batch_first=False``).
    """
    from ..cell import as_cell

    as_cell(cell)
    torch = _torch()
    name = cell.spec.name
    dtype = torch.float64 if cell.dtype == np.float64 else torch.float32
    D, H = cell.input_size, cell.hidden_size
    if name in ("rnn", "rnn-relu"):
        module = torch.nn.RNN(D, H, nonlinearity="tanh" if name == "rnn" else "relu")
    elif name == "lstm":
        module = torch.nn.LSTM(D, H)
    elif name == "gru":
        module = torch.nn.GRU(D, H)
    else:
        raise InvalidArgumentError(
            f"`cell` {name!r} has no PyTorch counterpart; to_torch takes rnn, rnn-relu, lstm, gru"
        )
    module = module.to(dtype)
    with torch.no_grad():
        for k in _NAMES:
            getattr(module, f"{k}_l0").copy_(torch.from_numpy(np.ascontiguousarray(cell.params[k])))
    return module
