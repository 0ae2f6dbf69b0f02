"""Realistic synthetic posts for scale tests and benches: real posts cut up and recombined.

Real Chinese posts are Zipfian (的, 我, 想死, 不想活了 recur everywhere), and a generator
asked for 10,000s of posts repeats what it has seen; posts made of pieces of real posts
have both properties, unlike characters drawn uniformly from a small alphabet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


class RealText:
    """Posts of three 8-30 character pieces of ``pool`` posts joined by "，", plus 1-3 random characters.

    With ``planted`` > 0, that share of :meth:`post` calls returns a ``protected`` post verbatim.
    """

    def __init__(self, pool: Sequence[str], protected: Sequence[str] = (), planted: float = 0.0) -> None:
        if planted and not protected:
            raise ValueError("planted protected posts need protected posts")
        self.pool, self.protected, self.planted = list(pool), list(protected), planted
        self.chars = "".join(self.pool)  # characters by their frequency in real posts

    def piece(self, rng: random.Random) -> str:
        text, k = rng.choice(self.pool), rng.randint(8, 30)
        start = rng.randrange(max(len(text) - k, 0) + 1)
        return text[start:start + k]

    def post(self, rng: random.Random) -> str:
        if self.planted and rng.random() < self.planted:
            return rng.choice(self.protected)
        chars = list("，".join(self.piece(rng) for _ in range(3)))
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(self.chars))
        return "".join(chars)
