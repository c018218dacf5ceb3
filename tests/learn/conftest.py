"""Shared fixtures for the learn tests: a tiny, separable, seeded text corpus."""

from __future__ import annotations

import numpy as np
import pytest

TOPICS = {
    "sport": "football goal match team player coach league score stadium referee".split(),
    "food": "recipe oven butter flour bake sugar kitchen dinner spicy sauce".split(),
    "space": "rocket orbit planet galaxy astronaut telescope moon launch comet star".split(),
}
COMMON = "the a of and today really very new big".split()


def make_corpus(per_topic: int = 15, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``per_topic`` texts of each topic: 6 topic words and 3 common words, shuffled."""
    rng = np.random.default_rng(seed)
    texts, tags = [], []
    for tag, words in TOPICS.items():
        for _ in range(per_topic):
            chosen = list(rng.choice(words, 6)) + list(rng.choice(COMMON, 3))
            rng.shuffle(chosen)
            texts.append(" ".join(chosen))
            tags.append(tag)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.array(tags)[order]


@pytest.fixture(scope="session")
def corpus() -> tuple[list[str], np.ndarray]:
    return make_corpus()
