"""Train the character-level LSTM of the ``language_model`` study, with PyTorch on the CPU.

    python -m gradflow.studies.trained_model.train [--out DIR] [--steps N]

writes ``lstm_initial.pt`` and ``lstm_trained.pt`` (``torch.save(model.state_dict())``),
``eval.npz`` and ``training.json`` into DIR (default: this package's folder).  The run is
deterministic: seeds, ``torch.use_deterministic_algorithms(True)`` and one CPU thread, so
the same PyTorch and the same help texts give the same weights.  The evaluation sequences
come from the held-out topics (:mod:`.corpus`); the report reads the committed ones.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import FILES
from . import corpus as C

#: the model and its training (a few minutes on one core)
SETTINGS = {"hidden_size": 64, "num_layers": 2, "seed": 0, "steps": 2500, "batch": 32,
            "length": 128, "lr": 1e-2, "lr_final": 1e-4, "clip": 1.0, "eval_every": 250,
            "eval_sequences": 48, "eval_length": 256, "analysis_sequences": 8}


def prepare(texts: dict | None = None, *, n: int = SETTINGS["eval_sequences"],
            length: int = SETTINGS["eval_length"]) -> dict:
    """The data of a run, without PyTorch: the training codes, the held-out codes and the
    evaluation sequences (``n`` windows of ``length + 1`` held-out codes), with the texts'
    SHA-256."""
    train, held = C.corpus(texts)
    held_codes = C.encode(held)
    codes = C.evaluation_sequences(held_codes, n, length + 1)
    return {"train": C.encode(train), "held_out": held_codes, "codes": codes,
            "train_sha256": C.fingerprint(train), "held_out_sha256": C.fingerprint(held)}


def batches(codes: np.ndarray, rng: np.random.Generator, batch: int, length: int):
    """One batch of windows of ``length + 1`` codes at random starts, shape
    ``(batch, length + 1)``."""
    starts = rng.integers(0, len(codes) - length - 1, size=batch)
    return np.stack([codes[s:s + length + 1] for s in starts])


def build(torch, settings: dict):
    """The model: ``lstm`` (batch-first, one-hot inputs) and a linear ``head``."""
    nn = torch.nn

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(C.VOCAB, settings["hidden_size"], settings["num_layers"],
                                batch_first=True)
            self.head = nn.Linear(settings["hidden_size"], C.VOCAB)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    return CharLSTM()


def evaluate(torch, model, codes: np.ndarray) -> dict:
    """Mean cross-entropy (nats per character) and accuracy of the next character, over
    every position of `codes` (N, T + 1), with the whole sequence as context."""
    with torch.no_grad():
        x = torch.from_numpy(C.one_hot(codes[:, :-1])).float()
        y = torch.from_numpy(codes[:, 1:].astype(np.int64))
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, C.VOCAB), y.reshape(-1))
        acc = (logits.argmax(-1) == y).double().mean()
    return {"loss": float(loss), "accuracy": float(acc)}


def write_data(file: Path, codes: np.ndarray, n: int) -> None:
    """``eval.npz``: every evaluation sequence's codes, and the one-hot inputs ``x`` and
    next-character ``targets`` of the first `n` (what ``gradflow analyze --data`` reads)."""
    np.savez_compressed(file, codes=codes, x=C.one_hot(codes[:n, :-1]),
                        targets=codes[:n, 1:].astype(np.int64))


def main(argv=None) -> int:
    import torch

    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=here)
    parser.add_argument("--steps", type=int, default=SETTINGS["steps"])
    args = parser.parse_args(argv)
    s = dict(SETTINGS, steps=args.steps)
    torch.manual_seed(s["seed"])
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    data = prepare()
    rng = np.random.default_rng(s["seed"])
    model = build(torch, s)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / FILES["initial"])
    opt = torch.optim.Adam(model.parameters(), lr=s["lr"])

    def lr_at(k: int) -> float:  # cosine from lr to lr_final
        cosine = 0.5 * (1 + math.cos(math.pi * k / s["steps"]))
        return s["lr_final"] + (s["lr"] - s["lr_final"]) * cosine

    history = {"step": [], "train_loss": [], "eval_loss": [], "eval_accuracy": []}
    first = evaluate(torch, model, data["codes"])
    history["step"].append(0)
    history["train_loss"].append(None)  # no training batch yet
    history["eval_loss"].append(first["loss"])
    history["eval_accuracy"].append(first["accuracy"])
    start, running = time.perf_counter(), []
    for k in range(1, s["steps"] + 1):
        w = batches(data["train"], rng, s["batch"], s["length"])
        x = torch.from_numpy(C.one_hot(w[:, :-1])).float()
        y = torch.from_numpy(w[:, 1:].astype(np.int64))
        for group in opt.param_groups:
            group["lr"] = lr_at(k - 1)
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, C.VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
        opt.step()
        running.append(loss.item())
        if k % s["eval_every"] == 0 or k == s["steps"]:
            ev = evaluate(torch, model, data["codes"])
            history["step"].append(k)
            history["train_loss"].append(float(np.mean(running)))
            history["eval_loss"].append(ev["loss"])
            history["eval_accuracy"].append(ev["accuracy"])
            running = []
            print(f"step {k:5d}  train {history['train_loss'][-1]:.3f}  held-out "
                  f"{ev['loss']:.3f} nats/char, accuracy {ev['accuracy']:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    seconds = time.perf_counter() - start
    torch.save(model.state_dict(), args.out / FILES["trained"])
    write_data(args.out / FILES["data"], data["codes"], s["analysis_sequences"])
    log = {"settings": s, "seconds": round(seconds, 1), "history": history,
           "characters": {"train": len(data["train"]), "held_out": len(data["held_out"])},
           "held_out_topics": list(C.HELD_OUT), "train_sha256": data["train_sha256"],
           "held_out_sha256": data["held_out_sha256"],
           "versions": {"python": platform.python_version(), "torch": torch.__version__,
                        "numpy": np.__version__},
           "final": {"eval_loss": history["eval_loss"][-1],
                     "eval_accuracy": history["eval_accuracy"][-1]}}
    (args.out / FILES["log"]).write_text(json.dumps(log, indent=1) + "\n")
    print(f"trained in {seconds:.0f} s; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
