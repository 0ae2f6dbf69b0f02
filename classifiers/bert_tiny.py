"""A tiny randomly initialised Chinese BERT checkpoint, for tests and benchmarks without downloads."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def char_vocab(texts: Iterable[str]) -> dict[str, int]:
    """Special tokens first, then every non-space character of ``texts`` in sorted order.

    Chinese BERT vocabularies are essentially one token per character, and the
    tokenizer splits CJK characters apart, so a character vocabulary behaves like one.
    """
    chars = sorted({c for text in texts for c in text if not c.isspace()} - set(SPECIAL_TOKENS))
    return {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *chars])}


def _tokenizer(vocab: dict[str, int]):
    from transformers import BertTokenizerFast

    try:  # transformers 5: the fast tokenizer takes the vocabulary itself
        return BertTokenizerFast(vocab=vocab, do_lower_case=False)
    except TypeError:  # transformers 4: it wants a vocab.txt file
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "vocab.txt"
            path.write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf-8")
            return BertTokenizerFast(vocab_file=str(path), do_lower_case=False)


def build_tiny_bert(texts: Iterable[str], out_dir: str | Path, hidden: int = 32, layers: int = 2,
                    heads: int = 2, seed: int = 0, max_positions: int = 512) -> Path:
    """Save a random tiny BERT encoder + character tokenizer to ``out_dir``; return the path.

    The directory loads like a real checkpoint (``from_pretrained``); it holds the encoder
    only, so the classification head is created fresh with the right number of labels.
    """
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = char_vocab(texts)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden,
                        max_position_embeddings=max_positions, pad_token_id=vocab["[PAD]"])
    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's RNG stream
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(out)
    _tokenizer(vocab).save_pretrained(out)
    log.info("tiny BERT (%d chars, hidden %d, %d layers) saved to %s", len(vocab), hidden, layers, out)
    return out
