"""from_keras against Keras's own outputs: small Keras 3 models (on the torch backend),
saved once, read from their files in a process without Keras and from the live objects;
and the errors for files and models gradflow cannot read."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from gradflow.errors import InvalidArgumentError, NonFiniteError, ShapeError  # noqa: E402
from gradflow.interop import from_keras  # noqa: E402

from .conftest import rel_error  # noqa: E402
from .subproc import run_python  # noqa: E402

pytestmark = pytest.mark.keras

ROOT = Path(__file__).resolve().parents[1]
T, B, D, H = 6, 3, 4, 5
REL = 1e-5  # float32
L = keras.layers


def _seq(*layers, shape=(T, D)):
    return keras.Sequential([keras.Input(shape), *layers])


def _stack():
    """Embedding in front, a Dense head, dropout between three recurrent layers (one an RNN
    around a GRUCell): a functional chain."""
    tokens = keras.Input((T,), dtype="int32", name="tokens")
    e = L.Embedding(11, D, name="embed")(tokens)
    h = L.LSTM(H, return_sequences=True, name="encoder")(e)
    h = L.Dropout(0.3, name="dropout")(h)
    h = L.SimpleRNN(3, return_sequences=True, name="middle")(h)
    h = L.RNN(L.GRUCell(2), return_sequences=True, name="top")(h)
    out = L.Dense(1, name="head")(h)
    return keras.Model(tokens, out)


#: name: (model builder, the layer whose input the network reads, the layer whose output
#: it gives (None: the model's own), the weights' scale, the cells gradflow should use)
MODELS = {
    "lstm": (lambda: _seq(L.LSTM(H, return_sequences=True, name="lstm")), None, None, 0.5,
             ["lstm"]),
    "gru": (lambda: _seq(L.GRU(H, return_sequences=True, name="gru")), None, None, 0.5, ["gru"]),
    "gru-cho": (lambda: _seq(L.GRU(H, return_sequences=True, reset_after=False)), None, None,
                0.5, ["gru-cho"]),
    "dense-rnn-relu": (lambda: _seq(L.Dense(4, name="dense"), L.SimpleRNN(
        H, activation="relu", use_bias=False, return_sequences=True)), "dense", None, 0.5,
        ["rnn-relu"]),
    "bidirectional": (lambda: _seq(L.Bidirectional(L.LSTM(H, return_sequences=True))), None,
                      None, 0.5, ["lstm", "lstm"]),
    "stack": (_stack, "embed", "top", 0.5, ["lstm", "rnn", "gru"]),
    # weights of scale 1: the gates' pre-activations reach hard_sigmoid's flat parts
    "hard-sigmoid": (lambda: _seq(L.LSTM(H, recurrent_activation="hard_sigmoid",
                                         return_sequences=True)), None, None, 1.0,
                     ["keras-lstm-tanh-hard_sigmoid"]),
}


def _numpy(t):
    """A torch tensor (Keras's output on the torch backend) as an array.  (Not through
    np.array: PyTorch's ``Tensor.__array__`` takes no ``copy`` argument, for which NumPy 2
    warns.)"""
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _save(model, path):
    """``model.save(path)``: Keras converts the torch backend's variables with np.array,
    for which NumPy 2 warns (see _numpy); the warning is Keras's and PyTorch's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy",
                                DeprecationWarning)
        model.save(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Per model: the model, its file, the input of its recurrent part and Keras's output
    of it (B, T, ...)."""
    folder = tmp_path_factory.mktemp("keras")
    rng = np.random.default_rng(0)
    out = {}
    for name, (build, before, last, scale, _) in MODELS.items():
        keras.utils.set_random_seed(1)
        model = build()
        model.set_weights([rng.normal(scale=scale, size=w.shape).astype(np.float32)
                           for w in model.weights])
        if name == "stack":
            x = rng.integers(0, 11, size=(B, T)).astype("int32")
        else:
            x = rng.standard_normal((B, T, D)).astype(np.float32)
        inner = _numpy(keras.Model(model.inputs[0], model.get_layer(before).output)(x)) \
            if before else x
        top = keras.Model(model.inputs[0], model.get_layer(last).output) if last else model
        path = folder / f"{name}.keras"
        _save(model, path)
        out[name] = dict(model=model, path=path, x=inner, want=_numpy(top(x)))
    return out


def test_files_are_read_without_keras_and_agree_with_keras(saved, tmp_path):
    np.savez(tmp_path / "inputs.npz", **{n: s["x"] for n, s in saved.items()})
    files = {n: str(s["path"]) for n, s in saved.items()}
    proc = run_python(f"""
        import json, sys
        import numpy as np
        from gradflow.interop import from_keras
        files = {files!r}
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        outputs, info = {{}}, {{}}
        for name, path in files.items():
            imp = from_keras(path)
            outputs[name] = imp.network.forward(inputs[name]).output
            info[name] = dict(cells=[c["cell"] for c in imp.network.describe()],
                              layers=imp.layers, skipped=imp.skipped,
                              dtype=imp.network.dtype.name)
        assert "keras" not in sys.modules and "tensorflow" not in sys.modules
        np.savez({str(tmp_path / "outputs.npz")!r}, **outputs)
        print(json.dumps(info))
    """, cwd=ROOT)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = np.load(tmp_path / "outputs.npz")
    for name, s in saved.items():
        assert outputs[name].shape == s["want"].shape, name
        assert rel_error(outputs[name], s["want"]) <= REL, name
        assert info[name]["cells"] == MODELS[name][4], name
        assert info[name]["dtype"] == "float32"
    assert info["stack"]["layers"] == [["encoder", "LSTM"], ["middle", "SimpleRNN"], ["top", "RNN"]]
    assert info["stack"]["skipped"] == [["tokens", "InputLayer"], ["embed", "Embedding"],
                                        ["dropout", "Dropout"], ["head", "Dense"]]


@pytest.mark.parametrize("name", list(MODELS))
def test_objects_agree_with_keras(saved, name):
    s = saved[name]
    imp = from_keras(s["model"])
    assert rel_error(imp.network.forward(s["x"]).output, s["want"]) <= REL
    assert [c["cell"] for c in imp.network.describe()] == MODELS[name][4]


def test_a_layer_object_is_a_one_layer_network(saved):
    s = saved["gru"]
    imp = from_keras(s["model"].layers[0])
    assert imp.layers == (("gru", "GRU"),) and imp.skipped == ()
    assert imp.network.num_layers == 1
    assert rel_error(imp.network.forward(s["x"]).output, s["want"]) <= REL


# ---------------------------------------------------------------------- errors
def _rewrite(src, dst, *, config=None, weights=None, drop=()):
    """A copy of the archive `src` with config.json and model.weights.h5 passed through
    `config` and `weights` (functions of their content) and the members `drop` left out."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if info.filename == "config.json" and config:
                data = json.dumps(config(json.loads(data))).encode()
            if info.filename == "model.weights.h5" and weights:
                data = weights(data)
            zout.writestr(info.filename, data)
    return dst


def _edit_h5(tmp_path, change):
    def edit(data):
        path = tmp_path / "w.h5"
        path.write_bytes(data)
        with h5py.File(path, "r+") as f:
            change(f)
        return path.read_bytes()
    return edit


def _set(dataset_path, value):
    def change(f):
        del f[dataset_path]
        f[dataset_path] = value
    return change


def _saved_model(tmp_path, *layers, name="m"):
    model = _seq(*layers)
    path = tmp_path / f"{name}.keras"
    _save(model, path)
    return path


def test_a_missing_path_and_files_that_are_not_keras_archives(tmp_path, saved):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        from_keras(tmp_path / "nothing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("not a model\n")
    with pytest.raises(InvalidArgumentError, match="not a zip archive"):
        from_keras(text)
    cut = tmp_path / "cut.keras"
    data = saved["lstm"]["path"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArgumentError, match="truncated or corrupted zip archive"):
        from_keras(cut)
    with pytest.raises(InvalidArgumentError, match="without config.json"):
        from_keras(_rewrite(saved["lstm"]["path"], tmp_path / "noconfig.keras",
                            drop={"config.json"}))
    with pytest.raises(InvalidArgumentError, match="without model.weights.h5"):
        from_keras(_rewrite(saved["lstm"]["path"], tmp_path / "now.keras",
                            drop={"model.weights.h5"}))
    with pytest.raises(InvalidArgumentError, match="model.weights.h5 cannot be read"):
        from_keras(_rewrite(saved["lstm"]["path"], tmp_path / "cut-h5.keras",
                            weights=lambda b: b[: len(b) // 2]))
    with pytest.raises(InvalidArgumentError, match="must be the path of a .keras file"):
        from_keras(42)


def test_misshapen_and_non_finite_weights(tmp_path, saved):
    src = saved["lstm"]["path"]
    bad = _rewrite(src, tmp_path / "shape.keras", weights=_edit_h5(
        tmp_path, _set("layers/lstm/cell/vars/1", np.zeros((H + 1, 4 * H), np.float32))))
    with pytest.raises(ShapeError, match=r"'lstm'.*recurrent_kernel .*vars/1\) has shape "
                                         r"\(6, 20\); expected \(5, 20\)"):
        from_keras(bad)
    kernel = np.zeros((D, 4 * H), np.float32)
    kernel[2, 3] = np.nan
    nan = _rewrite(src, tmp_path / "nan.keras", weights=_edit_h5(
        tmp_path, _set("layers/lstm/cell/vars/0", kernel)))
    with pytest.raises(NonFiniteError, match=r"'lstm'.*kernel .* non-finite value \(nan\) at "
                                             r"index \(2, 3\)"):
        from_keras(nan)
    gone = _rewrite(src, tmp_path / "gone.keras", weights=_edit_h5(
        tmp_path, lambda f: f.__delitem__("layers/lstm/cell/vars/2")))
    with pytest.raises(ShapeError, match=r"'lstm': 2 weight arrays.*expected 3"):
        from_keras(gone)


def _rename_class(config):
    layer = config["config"]["layers"][1]
    layer.update(class_name="PeepholeLSTM", module="my_layers",
                 registered_name="my_layers>PeepholeLSTM")
    return config


def test_models_gradflow_does_not_read(tmp_path, saved):
    with pytest.raises(InvalidArgumentError, match=r"'lstm'.*class 'PeepholeLSTM'"):
        from_keras(_rewrite(saved["lstm"]["path"], tmp_path / "custom.keras", config=_rename_class))
    between = _saved_model(tmp_path, L.LSTM(H, return_sequences=True), L.Dense(3, name="proj"),
                           L.LSTM(2, name="upper"), name="between")
    with pytest.raises(InvalidArgumentError, match=r"\['proj'\] stand between the recurrent "
                                                   r"layers 'lstm\w*' and 'upper'"):
        from_keras(between)
    summed = _saved_model(tmp_path, L.Bidirectional(L.GRU(H, return_sequences=True),
                                                    merge_mode="sum", name="both"), name="sum")
    with pytest.raises(InvalidArgumentError, match=r"'both': merge_mode='sum'"):
        from_keras(summed)
    backwards = _saved_model(tmp_path, L.SimpleRNN(H, go_backwards=True, name="rev"), name="back")
    with pytest.raises(InvalidArgumentError, match=r"'rev': go_backwards=True"):
        from_keras(backwards)
    odd = _saved_model(tmp_path, L.LSTM(H, activation="softsign", name="soft"), name="soft")
    with pytest.raises(InvalidArgumentError, match=r"'soft': activation 'softsign' cannot be"):
        from_keras(odd)


def test_models_that_are_not_one_stack():
    tokens = keras.Input((T, D))
    left = L.LSTM(2, return_sequences=True, name="left")(tokens)
    right = L.GRU(2, return_sequences=True, name="right")(tokens)
    branched = keras.Model(tokens, L.Concatenate(name="join")([left, right]))
    with pytest.raises(InvalidArgumentError, match=r"'join': it reads the outputs of "
                                                   r"\['left', 'right'\]"):
        from_keras(branched)
    mixed = _seq(L.LSTM(H, return_sequences=True, name="one"),
                 L.Bidirectional(L.GRU(2), name="two"))
    with pytest.raises(InvalidArgumentError, match=r"\['one'\] read one way and \['two'\] both"):
        from_keras(mixed)
