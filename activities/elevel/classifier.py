"""The learned text classifier behind `classify`: trained from resolved concerns, measured on held-out ones."""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import select

from registry.db import Sessions
from registry.models import Concern, Interaction
from registry.settings import Settings

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SAMPLE_CONCERNS = Path(__file__).with_name("sample_concerns.csv")
MIN_TRAINING_CONCERNS = 20


@dataclass(frozen=True)
class LabelledConcern:
    """A concern's text and the category people settled on."""

    text: str
    category: str


class TrainReport(BaseModel):
    """How a training run went: accuracy on the held-out concerns and how many were used for what."""

    accuracy: float
    n_train: int
    n_test: int
    model_path: str
    categories: list[str]


def concern_text(subject: str, body: str) -> str:
    """The text the classifier reads for a concern."""
    return f"{subject}\n{body}"


def default_model_path(settings: Settings) -> Path:
    """Where the trained model lives in the data folder."""
    return settings.data_dir / "models" / "classifier.joblib"


def load_sample_concerns(path: Path = SAMPLE_CONCERNS) -> list[LabelledConcern]:
    """The shipped labelled sample (subject, body, category), so a new desk has a model before it has history."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [LabelledConcern(concern_text(row["subject"], row["body"]), row["category"]) for row in rows]


def resolved_concerns(*, sessions: Sessions) -> list[LabelledConcern]:
    """Resolved and closed concerns with a category, each with its subject and the customer's first message."""
    first_message = (
        select(Interaction.concern_id, func.min(Interaction.id).label("first_id"))
        .where(Interaction.direction == "in", Interaction.concern_id.is_not(None))
        .group_by(Interaction.concern_id)
        .subquery()
    )
    statement = (
        select(Concern.subject, Concern.category, Interaction.body)
        .join(first_message, first_message.c.concern_id == Concern.id, isouter=True)
        .join(Interaction, Interaction.id == first_message.c.first_id, isouter=True)
        .where(Concern.status.in_(("resolved", "closed")), Concern.category.is_not(None))
        .order_by(Concern.created_at, Concern.id)
    )
    with sessions.begin() as session:
        rows = session.exec(statement).all()
    return [LabelledConcern(concern_text(subject, body or ""), category) for subject, category, body in rows]


def _pipeline() -> Pipeline:
    # scikit-learn is imported here, not at the top: it takes a second, and SOP validation imports every action.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    # Character n-grams carry typos and word forms that a few hundred concerns cannot teach word by word.
    features = make_union(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)),
        TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5)),
    )
    return make_pipeline(features, LogisticRegression(max_iter=2000, C=10.0))


def _save_atomically(model: Any, model_path: Path) -> None:
    # Workers may be loading the model while it is retrained: they see the old file or the new one, never half.
    model_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=model_path.parent, prefix=".classifier-", suffix=".joblib")
    os.close(handle)
    try:
        joblib.dump(model, temporary)
        os.replace(temporary, model_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fit_classifier(
    samples: Iterable[LabelledConcern], *, model_path: Path, test_size: float = 0.25, seed: int = 0
) -> TrainReport:
    """Measure a classifier on a held-out part of `samples`, then store one trained on all of them."""
    from sklearn.model_selection import train_test_split

    samples = list(samples)
    if len(samples) < MIN_TRAINING_CONCERNS:
        raise ValueError(f"training needs at least {MIN_TRAINING_CONCERNS} labelled concerns, there are {len(samples)}")
    texts = [sample.text for sample in samples]
    labels = [sample.category for sample in samples]
    counts = Counter(labels)
    if len(counts) < 2:
        raise ValueError("training needs concerns of at least two categories")
    n_test = max(round(len(samples) * test_size), len(counts))
    stratify = labels if min(counts.values()) >= 2 else None
    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=n_test, random_state=seed, stratify=stratify
    )
    accuracy = float(_pipeline().fit(train_x, train_y).score(test_x, test_y))
    # The stored model learns from every labelled concern; the held-out figure estimates how well it does.
    model = _pipeline().fit(texts, labels)
    _save_atomically(model, model_path)
    _CACHE.pop(Path(model_path), None)
    return TrainReport(
        accuracy=round(accuracy, 4), n_train=len(train_x), n_test=len(test_x),
        model_path=str(model_path), categories=sorted(counts),
    )


def train_classifier(*, sessions: Sessions, model_path: Path, include_sample: bool = True) -> TrainReport:
    """Train from resolved concerns (and the shipped sample unless told otherwise) and store the model."""
    samples = resolved_concerns(sessions=sessions)
    if include_sample:
        samples += load_sample_concerns()
    return fit_classifier(samples, model_path=model_path)


_CACHE: dict[Path, tuple[int, Pipeline]] = {}


def load_classifier(model_path: Path) -> Pipeline | None:
    """The trained model at `model_path` (reloaded when the file changes), or None before any training."""
    model_path = Path(model_path)
    try:
        stamp = model_path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _CACHE.get(model_path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, joblib.load(model_path))
        _CACHE[model_path] = cached
    return cached[1]


def predict_category(model: Pipeline, text: str) -> tuple[str, float]:
    """The most likely category of `text` and the model's confidence in it (0..1)."""
    probabilities = model.predict_proba([text])[0]
    best = int(probabilities.argmax())
    return str(model.classes_[best]), float(probabilities[best])
