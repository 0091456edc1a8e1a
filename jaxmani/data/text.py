"""Caption tokenisation and the word vocabulary, built the way the baseline builds them."""

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Sequence

from jaxmani.data.safe_pickle import load_pickle
from jaxmani.errors import UserError

END_TOKEN = "<end>"
_WORD = re.compile(r"\w+")


def tokenize(caption: str) -> list[str]:
    """Splits a caption into lowercase ASCII word tokens (runs of word characters)."""
    text = caption.replace("\ufffd\ufffd", " ").lower()
    tokens = (word.encode("ascii", "ignore").decode("ascii") for word in _WORD.findall(text))
    return [token for token in tokens if token]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Word list whose index is the word id; id 0 is '<end>', used only as padding."""

    words: tuple[str, ...]

    def __post_init__(self):
        if not self.words or self.words[0] != END_TOKEN:
            raise ValueError(f"a vocabulary must start with {END_TOKEN!r}")
        if len(set(self.words)) != len(self.words):
            raise ValueError("a vocabulary must not repeat a word")
        object.__setattr__(self, "_ids", {word: i for i, word in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[Sequence[str]]) -> "Vocabulary":
        """Numbers the words of tokenised captions from 1 in order of first occurrence."""
        seen = dict.fromkeys(word for caption in captions for word in caption)
        seen.pop(END_TOKEN, None)
        return cls((END_TOKEN, *seen))

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Maps tokens to ids, dropping words that are not in the vocabulary."""
        return [self._ids[token] for token in tokens if token in self._ids]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Maps ids back to words, stopping at the first padding id 0."""
        words = []
        for i in ids:
            if i == 0:
                break
            words.append(self.words[i])
        return words


def load_vocabulary_file(path: str) -> Vocabulary:
    """A vocabulary file: a workdir's vocabulary.json or the baseline's captions.pickle."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such vocabulary file")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                words = json.load(f)
            except ValueError as e:
                raise UserError(f"{path}: unreadable vocabulary ({e})") from e
    else:
        try:
            content = load_pickle(path)
        except Exception as e:  # Damaged and unsafe pickles raise several types.
            raise UserError(f"{path}: not a readable captions.pickle ({e})") from e
        ixtoword = content[2] if isinstance(content, list | tuple) and len(content) == 4 else None
        if not isinstance(ixtoword, dict) or sorted(ixtoword) != list(range(len(ixtoword))):
            raise UserError(
                f"{path}: not the baseline's captions.pickle "
                "([train_captions, test_captions, ixtoword, wordtoix])"
            )
        words = [ixtoword[i] for i in range(len(ixtoword))]
    try:
        return Vocabulary(tuple(words))
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: not a vocabulary ({e})") from e
