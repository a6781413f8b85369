"""The text the language model learns and is evaluated on: Python's own help topics
(``pydoc_data.topics``, shipped with every CPython), read as characters.

Nothing here needs PyTorch: the report reads the committed evaluation sequences, and the
training script (:mod:`.train`) builds its batches from :func:`corpus`.

The topics repeat one another (``compound`` holds the text of ``if``, ``while``, ``try``
...), so the corpus is built from paragraphs, each kept once.  Three topics are held out
for evaluation (:data:`HELD_OUT`) and none of their paragraphs is in the training text.
The help texts change a little between Python versions: the evaluation sequences the
report uses are committed (``eval.npz``) with the SHA-256 of the text they came from.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["ALPHABET", "UNKNOWN", "VOCAB", "HELD_OUT", "encode", "decode", "one_hot",
           "topics", "corpus", "evaluation_sequences", "fingerprint"]

#: the characters the model reads and predicts: newline and printable ASCII
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
#: the code of every other character (curly quotes, dashes, ...)
UNKNOWN = len(ALPHABET)
#: codes 0 .. VOCAB - 1
VOCAB = len(ALPHABET) + 1
#: the topics held out for evaluation (about a sixth of the text)
HELD_OUT = ("formatstrings", "string-methods", "typesmapping")

_CODE = np.full(128, UNKNOWN, dtype=np.uint8)
for _k, _ch in enumerate(ALPHABET):
    _CODE[ord(_ch)] = _k


def encode(text: str) -> np.ndarray:
    """The codes of `text`, shape ``(len(text),)``, uint8 (:data:`UNKNOWN` for characters
    outside :data:`ALPHABET`)."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    out = np.full(points.shape, UNKNOWN, dtype=np.uint8)
    ascii_ = points < 128
    out[ascii_] = _CODE[points[ascii_]]
    return out


def decode(codes) -> str:
    """The text of `codes` (``"\\ufffd"`` for :data:`UNKNOWN`)."""
    table = ALPHABET + "\ufffd"
    return "".join(table[int(c)] for c in np.asarray(codes).ravel())


def one_hot(codes) -> np.ndarray:
    """``codes`` (any shape) as one-hot vectors, shape ``codes.shape + (VOCAB,)``, uint8:
    the model's input."""
    codes = np.asarray(codes)
    out = np.zeros(codes.shape + (VOCAB,), dtype=np.uint8)
    np.put_along_axis(out, codes[..., None].astype(np.intp), 1, axis=-1)
    return out


def topics() -> dict:
    """Python's help topics by name (``pydoc_data.topics.topics``)."""
    from pydoc_data.topics import topics as _topics

    return dict(_topics)


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def corpus(texts: dict | None = None) -> tuple[str, str]:
    """The training text and the held-out text.

    Topics are read in sorted order and split into paragraphs (at blank lines); each
    paragraph is kept once, where it first appears.  The held-out text is the paragraphs of
    :data:`HELD_OUT`; the training text is every other topic's paragraphs that are not in
    it.  Paragraphs are joined by a blank line.

    Parameters
    ----------
    texts : dict of str to str, optional
        Topics by name (default: :func:`topics`).

    Returns
    -------
    train, held_out : str
    """
    texts = topics() if texts is None else texts
    held = list(dict.fromkeys(p for name in HELD_OUT for p in _paragraphs(texts.get(name, ""))))
    seen = set(held)
    train = []
    for name in sorted(texts):
        if name in HELD_OUT:
            continue
        for p in _paragraphs(texts[name]):
            if p not in seen:
                seen.add(p)
                train.append(p)
    return "\n\n".join(train), "\n\n".join(held)


def evaluation_sequences(codes: np.ndarray, n: int, length: int) -> np.ndarray:
    """`n` windows of `length` codes, evenly spaced from the start of `codes` to its end,
    shape ``(n, length)``, uint8 (non-overlapping when ``len(codes) >= n * length``)."""
    codes = np.asarray(codes, dtype=np.uint8)
    if len(codes) < length:
        raise ValueError(f"the text has {len(codes)} characters; a window needs {length}")
    starts = np.linspace(0, len(codes) - length, n).round().astype(np.int64)
    return np.stack([codes[s:s + length] for s in starts])


def fingerprint(text: str) -> str:
    """The SHA-256 of `text` (UTF-8), hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
