"""gradflow analyze: the numbers of its report against PyTorch float64 autograd, the same
report from a .keras file, a torch.save file and the network built in gradflow, findings
computed from the numbers, a self-contained HTML page, and bad input refused before any
work with exit status 2."""

from __future__ import annotations

import csv
import math
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import gradflow  # noqa: E402
from gradflow.analyzer import analyze, horizons_of, load_model, shift_forget_bias  # noqa: E402
from gradflow.cli import main  # noqa: E402
from gradflow.errors import InvalidArgumentError, NonFiniteError, ShapeError  # noqa: E402
from gradflow.interop import PickledObjectError, read_state_dict, to_torch  # noqa: E402

from . import naive  # noqa: E402
from .conftest import assert_close  # noqa: E402
from .subproc import run_python  # noqa: E402
from .torch_reference import torch_flow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _model(torch, H=3, bidirectional=True, batch_first=False, dtype=None):
    """A PyTorch model: a 2-layer LSTM and a linear head named 'head'."""
    torch.manual_seed(3)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(2, H, num_layers=2, bidirectional=bidirectional,
                                     batch_first=batch_first)
            self.head = torch.nn.Linear((2 if bidirectional else 1) * H, 2)

    m = Model()
    return m.double() if dtype == "float64" else m


# ---------------------------------------------------------------------- against autograd
@pytest.mark.torch
def test_the_report_numbers_agree_with_torch_autograd(torch, tmp_path):
    m = _model(torch, dtype="float64")
    rng = np.random.default_rng(0)
    T, B = 7, 2
    x = rng.standard_normal((T, B, 2))
    y = rng.standard_normal((B, 2))
    a = analyze(m, x, targets=y, readout="head", exponents=4)
    # the loss and dL/d(output) by autograd on the PyTorch model itself
    out = m.rnn(torch.from_numpy(x))[0]
    out.retain_grad()
    loss = torch.nn.functional.mse_loss(m.head(out[-1]), torch.from_numpy(y))
    loss.backward()
    assert a.loss == pytest.approx(loss.item(), rel=1e-12)
    ref_lag, ref_grad, ref_units = torch_flow(torch, a.network, x, out.grad.numpy())
    assert_close(a.flow.log10_lag, ref_lag)
    assert_close(a.flow.log10_grad, ref_grad)
    for layer in range(2):
        assert_close(a.flow.log10_grad_units[layer], ref_units[layer])
    # and the numbers in the report's data files are those
    a.report(tmp_path / "r", formats=["md"])
    rows = _rows(tmp_path / "r" / "data" / "lags-lag_maps.csv")
    got = np.array([float(r["log10_norm"]) for r in rows])
    want = np.array([ref_lag[int(r["layer"]) - 1, int(r["direction"]), int(r["lag"]),
                          int(r["sequence"])] for r in rows])
    assert len(rows) == int(np.isfinite(ref_lag).sum())  # every finite entry, once
    assert_close(got, want)
    rows = _rows(tmp_path / "r" / "data" / "heatmaps-layers_time.csv")
    med = np.median(ref_grad, axis=-1).reshape(4, T)  # rows: layer, direction
    assert_close([float(r["log10_norm"]) for r in rows],
                 [med[int(r["row"]), int(r["t"]) - 1] for r in rows])


def test_horizons_are_the_first_lag_below_the_level():
    lags = np.arange(6)
    curves = np.array([[0.0, -1, -3, -9, -12, -20], [0.0, -1, -2, -3, -4, -5],
                       [-np.inf] * 6, [1.0, 0.5, np.nan, -8.0, -7.5, -9.0]]).T  # (K, B)
    h = horizons_of(curves, lags, 1e-8)
    expected = []
    for b in range(curves.shape[1]):  # slow loop
        v0 = curves[0, b]
        first = next((int(k) for k in lags if curves[k, b] < v0 - 8), math.inf)
        expected.append(first if np.isfinite(v0) else math.nan)
    np.testing.assert_array_equal(h, expected)
    assert h.tolist()[:2] == [3, math.inf] and math.isnan(h[2])


# ---------------------------------------------------------------------- findings
def test_findings_quote_the_numbers_and_change_with_the_weights():
    net = gradflow.Network("lstm", 2, 5, num_layers=2, seed=1)
    x = np.random.default_rng(2).standard_normal((60, 3, 2))
    a = analyze(net, x, forget_bias=4.0, exponents=3)
    lines = a.summary
    assert len(lines) == 2 + 1 + 1 + 1  # two layers, the loss gradient, Lyapunov, what-if
    # layer 2's horizon: the first lag 10^-8 below lag 0, by a slow loop on the lag map
    lag = a.flow.log10_lag[1, 0]
    hz = []
    for b in range(3):
        below = [k for k, v in zip(a.flow.lags, lag[:, b]) if v < lag[0, b] - 8]
        hz.append(below[0] if below else math.inf)
    if all(np.isfinite(hz)):
        assert f"after {np.median(hz):.0f} steps" in lines[1]
    # the share of forget gates below 0.5, from the slow NumPy LSTM on layer 1
    p = net.layers[0][0].params
    H = 5
    zeros = (np.zeros((3, H)), np.zeros((3, H)))
    states = naive.forward("lstm", p, x, zeros)  # (2, T + 1, B, H)
    h_prev = states[0, :-1]
    pre = x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]
    f = naive.sigmoid(pre[..., H:2 * H])
    assert f"{100 * np.mean(f < 0.5):.0f} % of its f gates are below 0.5" in lines[0]
    lam = np.max(np.median(a.lyapunov.exponents[..., 0], axis=-1))
    assert f"is {lam:.3g} per step" in lines[3]
    assert "raised by 4" in lines[4]
    # other weights, other findings
    b = analyze(shift_forget_bias(net, 4.0), x, exponents=3)
    assert b.summary[:2] != lines[:2]
    assert b.horizons[1].tolist() == a.whatif.horizons[1].tolist()


def test_shifting_the_forget_bias_moves_only_those_rows():
    net = gradflow.Network(["lstm", "gru"], 2, 3, num_layers=2, seed=0)
    out = shift_forget_bias(net, 1.5)
    for layer in range(2):
        before, after = net.layers[layer][0], out.layers[layer][0]
        rows = before.gate_slice(before.spec.forget_gate)
        delta = after.params["bias_ih"] - before.params["bias_ih"]
        assert_close(delta[rows], np.full(3, 1.5))
        assert np.all(np.delete(delta, np.arange(rows.start, rows.stop)) == 0)
        assert np.array_equal(after.params["weight_hh"], before.params["weight_hh"])


# ---------------------------------------------------------------------- files
@pytest.mark.torch
def test_keras_file_torch_file_and_gradflow_network_give_the_same_numbers(torch, tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    net = gradflow.Network("lstm", 3, 4, num_layers=2, seed=1, dtype=np.float32,
                           batch_first=True)
    rng = np.random.default_rng(5)
    W, bias = rng.standard_normal((2, 4)).astype(np.float32), np.float32([0.1, -0.2])
    T, B = 12, 3
    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    y = rng.standard_normal((B, 2))
    # PyTorch: a container with the LSTM and a head, saved as a state dict
    mod = torch.nn.Module()
    mod.rnn = to_torch(net)
    mod.head = torch.nn.Linear(4, 2)
    with torch.no_grad():
        mod.head.weight.copy_(torch.from_numpy(W))
        mod.head.bias.copy_(torch.from_numpy(bias))
    torch.save(mod.state_dict(), tmp_path / "model.pt")
    # Keras: the same weights (kernels transposed, one bias per gate block)
    km = keras.Sequential([keras.Input((T, 3)), keras.layers.LSTM(4, return_sequences=True),
                           keras.layers.LSTM(4, return_sequences=True),
                           keras.layers.Dense(2, name="readout")])
    for layer, cell in zip(km.layers[:2], (net.layers[0][0], net.layers[1][0])):
        p = cell.params
        layer.set_weights([p["weight_ih"].T, p["weight_hh"].T, p["bias_ih"] + p["bias_hh"]])
    km.layers[2].set_weights([W.T, bias])
    with warnings.catch_warnings():  # Keras's torch backend under NumPy 2, while saving
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy",
                                DeprecationWarning)
        km.save(tmp_path / "model.keras")
    runs = {
        "torch": analyze(tmp_path / "model.pt", x, targets=y, readout="head", batch_first=True,
                         exponents=3),
        "keras": analyze(tmp_path / "model.keras", x, targets=y, readout="readout",
                         exponents=3),
    }
    # gradflow: the same loss gradient given directly
    out = net.forward(x).output.astype(np.float64)  # (B, T, 4)
    dlog = np.zeros((B, T, 2))
    dlog[:, -1] = 2 * (out[:, -1] @ W.T.astype(np.float64) + bias - y) / (B * 2)
    runs["gradflow"] = analyze(net, x, doutput=dlog @ W.astype(np.float64), exponents=3)
    ref = runs["gradflow"]
    for name in ("torch", "keras"):
        got = runs[name]
        assert got.loss == pytest.approx(runs["torch"].loss, rel=1e-5)
        for attr in ("log10_lag", "log10_grad"):
            assert_close(getattr(got.flow, attr), getattr(ref.flow, attr), dtype=np.float32,
                         err_msg=f"{name} {attr}")
        assert_close(got.lyapunov.exponents, ref.lyapunov.exponents, dtype=np.float32)
        np.testing.assert_array_equal(got.horizons, ref.horizons)
        assert_close(got.gate_below_half, ref.gate_below_half, dtype=np.float32)
    for name, a in runs.items():
        a.report(tmp_path / name, formats=["md"])
    for svg in sorted((tmp_path / "gradflow" / "figures").glob("*.svg")):  # every figure's data
        data = tmp_path / "gradflow" / "data" / f"{svg.stem}.csv"
        ours = [list(r.values()) for r in _rows(data)]
        for name in ("torch", "keras"):
            theirs = [list(r.values()) for r in _rows(tmp_path / name / "data" / data.name)]
            assert len(theirs) == len(ours), (name, data.name)
            a = np.array([[float(v) for v in r if _number(v)] for r in ours])
            b = np.array([[float(v) for v in r if _number(v)] for r in theirs])
            assert_close(b, a, dtype=np.float32, err_msg=f"{name} {data.name}")


def _number(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d*)?(e-?\d+)?", text.strip().rstrip(" %")) is not None


def test_the_html_is_self_contained_and_every_figure_has_finite_data(tmp_path):
    net = gradflow.Network("gru", 2, 4, num_layers=2, bidirectional=True, seed=2)
    a = analyze(net, length=30, batch=3, forget_bias=2.0, exponents=2)
    files = a.report(tmp_path / "r")
    html = (tmp_path / "r" / "index.html").read_text()
    assert re.findall(r"""(?:src|href)=["'](?:https?:)?//""", html) == []
    assert "<script" not in html and "@import" not in html
    # the note on how equations were rendered only where there were some
    assert "mathtext: 0 rendered (0 of them after simplifying commands mathtext lacks), " \
        "0 shown" not in html
    svgs = sorted((tmp_path / "r" / "figures").glob("*.svg"))
    assert len(svgs) >= 6 and len(files) > len(svgs)
    for svg in svgs:
        rows = _rows(tmp_path / "r" / "data" / f"{svg.stem}.csv")
        assert rows, svg.name
        for r in rows:
            for k, v in r.items():
                if _number(v):
                    assert math.isfinite(float(v)), (svg.name, k, v)
    text = (tmp_path / "r" / "index.md").read_text()
    assert "random inputs: 3 sequences of 30 steps" in text
    # in a notebook: a short repr, a table and a figure, and a tidy frame
    assert len(repr(a)) < 400 and "data:image/svg+xml;base64" in a._repr_html_()
    frame = a.to_frame()
    assert len(frame) == a.flow.log10_lag.size
    row = frame.iloc[len(frame) // 2]
    assert row["log10_norm"] == a.flow.log10_lag[int(row["layer"]), int(row["direction"]),
                                                 list(a.flow.lags).index(row["lag"]),
                                                 int(row["sequence"])] or \
        np.isnan(row["log10_norm"])
    assert list(a.whatif.to_frame().columns) == ["layer", "direction", "sequence", "horizon"]
    for line in a.summary:
        assert line in text


def test_the_same_seed_gives_the_same_report(tmp_path):
    net = gradflow.Network("lstm", 2, 3, seed=0)
    for k in range(2):
        analyze(net, length=20, batch=2, seed=7, exponents=2).report(tmp_path / f"r{k}")
    for f in sorted((tmp_path / "r0").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "r1" / f.relative_to(tmp_path / "r0")).read_bytes()
    other = analyze(net, length=20, batch=2, seed=8, exponents=2)
    assert other.summary != analyze(net, length=20, batch=2, seed=7, exponents=2).summary


# ---------------------------------------------------------------------- torch.save files
@pytest.mark.torch
def test_state_dicts_are_read_like_torch_load(torch, tmp_path):
    sd = torch.nn.GRU(3, 4, num_layers=2).state_dict()
    sd["t"] = torch.arange(6.0).reshape(2, 3).t()  # not contiguous
    sd["half"] = torch.randn(5, dtype=torch.float16)
    sd["bf16"] = torch.randn(3, dtype=torch.bfloat16)
    sd["d"] = torch.randn(2, 2, dtype=torch.float64)
    sd["view"] = sd["d"][1]  # shares d's storage
    sd["ints"] = torch.arange(4)
    torch.save({"model": sd, "epoch": 3, "note": "x"}, tmp_path / "ckpt.pt")
    got = read_state_dict(tmp_path / "ckpt.pt")
    back = torch.load(tmp_path / "ckpt.pt", weights_only=True)["model"]
    assert list(got) == [f"model.{k}" for k in back]
    for k, v in back.items():
        want = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
        assert got[f"model.{k}"].dtype == want.dtype and np.array_equal(got[f"model.{k}"], want)
    net = load_model(tmp_path / "ckpt.pt", name="model").network
    assert net.num_layers == 2 and net.layers[0][0].spec.name == "gru"


@pytest.mark.torch
def test_pickled_code_does_not_run(torch, tmp_path):
    torch.save(torch.nn.LSTM(3, 4), tmp_path / "module.pt")
    with pytest.raises(PickledObjectError, match="torch.nn.modules.rnn.LSTM"):
        read_state_dict(tmp_path / "module.pt")
    with pytest.raises(InvalidArgumentError, match="--trust-pickle"):
        load_model(tmp_path / "module.pt")
    assert load_model(tmp_path / "module.pt", trust_pickle=True).network.hidden_sizes == (4,)
    # a pickle that would call os.system: refused, and nothing runs
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"w": torch.zeros(2)}, tmp_path / "evil.pt")
    with zipfile.ZipFile(tmp_path / "evil.pt") as z:
        names = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    names[pkl] = pickle.dumps({"w": Evil()}, protocol=2)
    with zipfile.ZipFile(tmp_path / "evil2.pt", "w") as z:
        for n, data in names.items():
            z.writestr(n, data)
    with pytest.raises(PickledObjectError, match="posix.system|os.system"):
        read_state_dict(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_a_damaged_torch_save_file_is_an_error_naming_it(tmp_path):
    """Found by the fuzzer: a zip entry's 'version needed' byte changed made zipfile raise
    NotImplementedError; any damage is an InvalidArgumentError that names the file."""
    blob = bytearray((ROOT / "analysis" / "trained_model" / "lstm_initial.pt").read_bytes())
    central = blob.index(b"PK\x01\x02")                 # the first central directory entry
    blob[central + 6] = 64                             # version needed to extract: 6.4
    (tmp_path / "v.pt").write_bytes(bytes(blob))
    with pytest.raises(InvalidArgumentError, match="v.pt.*truncated or corrupt"):
        read_state_dict(tmp_path / "v.pt")
    (tmp_path / "cut.pt").write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(InvalidArgumentError, match="cut.pt"):
        read_state_dict(tmp_path / "cut.pt")


# ---------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("models")
    m = _model(torch, bidirectional=False)
    torch.save(m.state_dict(), folder / "model.pt")
    np.save(folder / "x.npy", np.random.default_rng(0).standard_normal((15, 2, 2)))
    return folder


def _cli(capsys, *argv):
    code = main(["analyze", *map(str, argv), "--no-progress", "--exponents", "2"])
    return code, capsys.readouterr().err


@pytest.mark.torch
def test_the_command_line_end_to_end(saved, tmp_path, capsys):
    y = np.random.default_rng(1).standard_normal((2, 2))
    np.save(tmp_path / "y.npy", y)
    code, err = _cli(capsys, saved / "model.pt", "--data", saved / "x.npy", "--targets",
                     tmp_path / "y.npy", "--readout", "head", "--forget-bias", "2", "--out",
                     tmp_path / "out")
    assert code == 0, err
    text = (tmp_path / "out" / "index.md").read_text()
    assert "the sequences in" in text and "mse loss of the targets at the last step" in text
    assert "What if the forget-gate bias were +2?" in text


@pytest.mark.torch
@pytest.mark.parametrize("case, message", [
    ("suffix", "does not read .txt files"),
    ("garbage", "not a torch.save zip archive"),
    ("shape", r"has shape \(15, 2, 3\); expected \(T, B, D\) with D = 2"),
    ("nan", r"holds nan at index \(3, 1, 0\)"),
    ("readout", r"no tensor 'tail.weight'; linear layers there: \['head'\]"),
    ("missing", "does not exist"),
])
def test_bad_input_is_refused_with_exit_status_2(saved, tmp_path, capsys, case, message):
    model, data = saved / "model.pt", saved / "x.npy"
    extra = []
    if case == "suffix":
        model = tmp_path / "model.txt"
        model.write_text("hello")
    elif case == "garbage":
        model = tmp_path / "model.pt"
        model.write_bytes(os.urandom(256))
    elif case == "shape":
        data = tmp_path / "x.npy"
        np.save(data, np.zeros((15, 2, 3)))
    elif case == "nan":
        data = tmp_path / "x.npy"
        x = np.zeros((15, 2, 2))
        x[3, 1, 0] = np.nan
        np.save(data, x)
    elif case == "readout":
        extra = ["--readout", "tail", "--targets", data]
    elif case == "missing":
        model = tmp_path / "nowhere.keras"
    out = tmp_path / "out"
    code, err = _cli(capsys, model, "--data", data, "--out", out, *extra)
    assert code == 2
    assert re.search(message, err), err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_errors_in_python_name_what_was_expected():
    net = gradflow.Network("lstm", 3, 2, seed=0)
    with pytest.raises(ShapeError, match=r"expected \(T, B, D\) with D = 3"):
        analyze(net, np.zeros((5, 2, 4)))
    x = np.ones((5, 2, 3))
    x[4, 0, 2] = np.inf
    with pytest.raises(NonFiniteError, match=r"inf at index \(4, 0, 2\)"):
        analyze(net, x)
    with pytest.raises(InvalidArgumentError, match="`loss` 'cross-entropy' needs a readout"):
        analyze(net, np.ones((5, 2, 3)), targets=np.zeros((2,), dtype=int), loss="cross-entropy")
    with pytest.raises(InvalidArgumentError, match="forget-like gate"):
        analyze(gradflow.Network("rnn", 3, 2, seed=0), forget_bias=1.0)
    with pytest.raises(InvalidArgumentError, match="`threshold` must be in"):
        analyze(net, threshold=2.0)


@pytest.mark.torch
def test_an_unwritable_out_is_refused_before_any_work(saved, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        proc = run_python(f"""
            import sys, time
            from gradflow.cli import main
            start = time.perf_counter()
            code = main(["analyze", {str(saved / 'model.pt')!r}, "--out",
                         {str(folder / 'out')!r}, "--no-progress"])
            print(code, round(time.perf_counter() - start, 3))
        """, drop_dac=True, check=False)
    finally:
        folder.chmod(0o755)
    code, _ = proc.stdout.split()
    assert code == "2", proc.stderr
    assert "--out" in proc.stderr or "cannot be written" in proc.stderr or "not writable" in proc.stderr
    assert "analyze:" in proc.stderr and list(folder.iterdir()) == []
