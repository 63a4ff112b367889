"""The MiniLM word-piece tokenizer through the ``tokenizers`` library alone (no transformers).

Importing transformers costs seconds; the ``tokenizers`` library it wraps loads in about 0.1 s.
:class:`WordPieces` reads the same ``tokenizer.json`` and answers the calls that the reader
(:mod:`qa.reader.spans`) and the ONNX embedder (:mod:`qa.index.embed_onnx`) make, with the same
ids, segment ids, offsets and overflowing windows as transformers' fast tokenizer
(``tests/unit/reader/test_tokens.py`` compares them).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class Encoded(dict[str, Any]):
    """A batch of encodings as transformers returns it: keys to lists, plus ``sequence_ids``."""

    def __init__(self, encodings: Sequence[Any], mapping: Sequence[int] | None) -> None:
        super().__init__(
            input_ids=[e.ids for e in encodings],
            token_type_ids=[e.type_ids for e in encodings],
            attention_mask=[e.attention_mask for e in encodings],
            offset_mapping=[e.offsets for e in encodings],
        )
        if mapping is not None:
            self["overflow_to_sample_mapping"] = list(mapping)
        self._encodings = encodings

    def sequence_ids(self, index: int) -> list[int | None]:
        """Which sequence (0: question, 1: context, None: special) each token belongs to."""
        return list(self._encodings[index].sequence_ids)


class WordPieces:
    """The fast tokenizer of ``tokenizer.json`` with transformers' call signature (its subset).

    Args:
        path: A ``tokenizer.json`` file, or a folder holding one.
    """

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        file = path / "tokenizer.json" if path.is_dir() else path
        self._tok = Tokenizer.from_file(str(file))
        padding = self._tok.padding or {}
        self.pad_token_id = int(padding.get("pad_id", 0))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._lock = threading.Lock()  # truncation is tokenizer state; calls may come from threads

    def __call__(
        self,
        text: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        **_: Any,
    ) -> Encoded:
        """Encode texts (or pairs) without padding; windows of long pairs when asked.

        Args:
            text: First sequences.
            text_pair: Second sequences (one per text), or None.
            add_special_tokens: Add [CLS] and [SEP].
            truncation: False, True/``longest_first``, ``only_first`` or ``only_second``.
            max_length: Longest encoding (tokens, specials included) when truncating.
            stride: Tokens shared by consecutive overflowing windows.
            return_overflowing_tokens: Return every window, with ``overflow_to_sample_mapping``.
        """
        inputs: list[Any] = (
            list(text) if text_pair is None else list(zip(text, text_pair, strict=True))
        )
        with self._lock:
            if truncation and max_length:
                strategy = "longest_first" if truncation is True else str(truncation)
                self._tok.enable_truncation(max_length, stride=stride, strategy=strategy)
            else:
                self._tok.no_truncation()
            encodings = self._tok.encode_batch(inputs, add_special_tokens=add_special_tokens)
            self._tok.no_truncation()
        if not return_overflowing_tokens:
            return Encoded(encodings, None)
        flat, mapping = [], []
        for i, enc in enumerate(encodings):
            for window in [enc, *enc.overflowing]:
                flat.append(window)
                mapping.append(i)
        return Encoded(flat, mapping)


def base_tokenizer_file() -> Path:
    """``tokenizer.json`` of the MiniLM base package (the reader's and embedder's tokenizer)."""
    from qa.reader.weights import base_model_path

    return base_model_path() / "tokenizer.json"
