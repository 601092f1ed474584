"""The built-in procedural text corpus of the LM zoo, in pure Python (no torch, no NumPy).

Each document mixes sentences of a small English-like grammar with random lowercase strings that
recur later in the same document (a string's second occurrence is predictable only by copying
its first: the job induction heads do), plus repeated random token sequences for the head scores
and `loss:repeated`. Document `i` depends only on `(seed, i)`, so every slice regenerates the same
text in every run.
"""

from __future__ import annotations

import random

CORPUS_NAME = "induction-text"
CORPUS_VERSION = 1
TRAIN_SEED = 0
HELDOUT_SEED = 1000003
LETTERS = "abcdefghijklmnopqrstuvwxyz"

_SUBJECTS = ("the cat", "a dog", "the bird", "my friend", "the old man", "a child", "the fox")
_VERBS = ("sees", "likes", "finds", "follows", "calls", "helps", "meets", "watches")
_OBJECTS = ("the ball", "a tree", "the river", "her book", "the moon", "a red box", "the road")
_TAILS = ("today", "again", "at night", "in the park", "by the sea", "slowly", "with joy")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if rng.random() < 0.5:
        words.append(rng.choice(_TAILS))
    return " ".join(words) + "."


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(4, 9)))


def document(index: int, seed: int = HELDOUT_SEED, length: int = 240) -> str:
    """About `length` characters: grammar sentences and invented names that recur."""
    rng = random.Random(f"{seed}:{index}")
    names = [_name(rng) for _ in range(2)]
    parts: list[str] = []
    size = 0
    while size < length:
        roll = rng.random()
        if roll < 0.45:
            piece = _sentence(rng)
        else:
            piece = f"{rng.choice(names)} {rng.choice(_VERBS)} {rng.choice(names)}."
        parts.append(piece)
        size += len(piece) + 1
    return " ".join(parts)


def documents(count: int, seed: int = HELDOUT_SEED) -> list[str]:
    """The first `count` documents of the corpus for `seed` (analyses use HELDOUT_SEED)."""
    return [document(i, seed) for i in range(count)]


def fingerprint_text(count: int) -> str:
    """What the corpus' fingerprint hashes: its definition, not its bytes."""
    return f"{CORPUS_NAME}:v{CORPUS_VERSION}:seed{HELDOUT_SEED}:n{count}"
