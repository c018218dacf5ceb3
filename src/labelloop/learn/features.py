"""Featurizers: turn raw texts into a feature matrix.

A featurizer is fitted **once** on the text of the whole pool (unsupervised, no labels), and
the caller caches the resulting matrix; each active-learning round then only fits a classifier
on rows of that cached matrix. Both featurizers are scikit-learn transformers, so a saved
model can be ``Pipeline([("features", featurizer), ("clf", classifier)])`` and be used on raw
text on its own (see :func:`labelloop.learn.models.build_pipeline`).

``"tfidf"``
    word 1-2-grams, sublinear tf, float32, at most ``max_features`` columns (200,000 by
    default, so that the fits of a round stay in seconds even for a pool of 1M items).
``"embed"``
    256-d sentence embeddings from the optional ``wordllama`` package, whose weights ship
    inside the package: nothing is ever downloaded.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterable
from typing import Any, Union

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from labelloop.errors import ConfigError, InvalidInputError

__all__ = [
    "FEATURIZER_NAMES",
    "EmbedFeaturizer",
    "Featurizer",
    "TfidfFeaturizer",
    "load_wordllama",
    "make_featurizer",
]

EMBED_EXTRA_MESSAGE = "embed-* models need the optional extra: pip install 'labelloop[embeddings]'"


class TfidfFeaturizer(TransformerMixin, BaseEstimator):
    """TF-IDF over word 1-2-grams, float32, with a capped vocabulary.

    ``min_df`` (2 by default) drops n-grams seen in a single text, which halves the
    vocabulary of a real corpus. On a tiny corpus where that would leave no terms, the fit
    falls back to ``min_df=1`` (recorded in ``min_df_``) instead of failing.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int | None = 200_000,
        sublinear_tf: bool = True,
    ):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf

    def _vectorizer(self, min_df: int) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            min_df=min_df,
            max_features=self.max_features,
            sublinear_tf=self.sublinear_tf,
            strip_accents="unicode",
            dtype=np.float32,
        )

    def fit(self, texts: Iterable[str], y: Any = None) -> TfidfFeaturizer:
        """Learn the vocabulary and idf weights of ``texts``."""
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Iterable[str], y: Any = None, **_: Any) -> sp.csr_matrix:
        """Fit and return the (n, n_features) float32 CSR matrix in one tokenizing pass."""
        texts = _as_text_list(texts)
        if not texts:
            raise InvalidInputError("cannot build features: there are no texts")
        attempts = [self.min_df] if self.min_df == 1 else [self.min_df, 1]
        for min_df in attempts:
            vectorizer = self._vectorizer(min_df)
            try:
                matrix = vectorizer.fit_transform(texts)
            except ValueError as error:  # "no terms remain" / "empty vocabulary"
                last_error = error
                continue
            self.vectorizer_ = vectorizer
            self.min_df_ = min_df
            self.n_features_out_ = len(vectorizer.vocabulary_)
            return matrix.tocsr()
        raise InvalidInputError(f"cannot build features: the texts contain no words ({last_error})")

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        """Return the (n, n_features) float32 CSR matrix of ``texts``."""
        if not hasattr(self, "vectorizer_"):
            raise InvalidInputError("the tfidf featurizer must be fitted before transform")
        return self.vectorizer_.transform(_as_text_list(texts)).tocsr()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.vectorizer_.get_feature_names_out()


_WORDLLAMA_LOCK = threading.Lock()
_WORDLLAMA_CACHE: dict[str, Any] = {}


def load_wordllama() -> Any:
    """Return the process-wide WordLlama model, loading it on first use (never downloads).

    Raises :class:`ConfigError` if the optional ``wordllama`` package is not installed.
    """
    model = _WORDLLAMA_CACHE.get("model")
    if model is not None:
        return model
    with _WORDLLAMA_LOCK:
        if "model" not in _WORDLLAMA_CACHE:
            try:
                import wordllama
                from wordllama import WordLlama
            except ImportError as error:
                raise ConfigError(EMBED_EXTRA_MESSAGE) from error
            _WORDLLAMA_CACHE["model"] = WordLlama.load(
                cache_dir=pathlib.Path(wordllama.__file__).parent, disable_download=True
            )
        return _WORDLLAMA_CACHE["model"]


class EmbedFeaturizer(TransformerMixin, BaseEstimator):
    """Dense float32 sentence embeddings (256-d) from WordLlama, L2-normalised.

    WordLlama pads each batch to its longest text, so small batches are faster on long texts.
    Stateless: ``fit`` only checks that the model can be loaded. The WordLlama object is never
    stored on the instance (it lives in a module-level cache), so the featurizer pickles small
    and reloads the model lazily after unpickling.
    """

    def __init__(self, *, batch_size: int = 32, normalize: bool = True):
        self.batch_size = batch_size
        self.normalize = normalize

    def fit(self, texts: Iterable[str] | None = None, y: Any = None) -> EmbedFeaturizer:
        load_wordllama()
        self.fitted_ = True
        return self

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        texts = _as_text_list(texts)
        model = load_wordllama()
        if not texts:
            return np.zeros((0, 256), dtype=np.float32)
        out = np.asarray(model.embed(texts, norm=False, batch_size=self.batch_size), dtype=np.float32)
        out = np.nan_to_num(out, copy=False).reshape(len(texts), -1)
        # Normalising here rather than in wordllama keeps empty texts at 0 instead of NaN.
        return normalize(out, copy=False) if self.normalize else out


Featurizer = Union[TfidfFeaturizer, EmbedFeaturizer]

_FEATURIZERS = {"tfidf": TfidfFeaturizer, "embed": EmbedFeaturizer}
FEATURIZER_NAMES: tuple[str, ...] = tuple(_FEATURIZERS)


def make_featurizer(name: str) -> Featurizer:
    """Return a fresh, unfitted featurizer: ``"tfidf"`` or ``"embed"``.

    ``"embed"`` checks at once that the optional ``wordllama`` package is importable (raising
    :class:`ConfigError` with the install hint if not) but loads the model only when used.
    """
    if name not in _FEATURIZERS:
        known = ", ".join(FEATURIZER_NAMES)
        raise InvalidInputError(f"unknown featurizer {name!r}; known: {known}")
    if name == "embed":
        try:
            import wordllama  # noqa: F401
        except ImportError as error:
            raise ConfigError(EMBED_EXTRA_MESSAGE) from error
    return _FEATURIZERS[name]()


def _as_text_list(texts: Iterable[str]) -> list[str]:
    """Texts as a list of str; ``None`` becomes the empty text."""
    if isinstance(texts, str):
        raise InvalidInputError("expected a list of texts, got a single string")
    return ["" if t is None else str(t) for t in texts]
