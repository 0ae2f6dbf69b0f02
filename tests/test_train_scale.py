"""Large training sets: grid candidates compared on a stratified sample, the winner refit on all rows."""

from __future__ import annotations

from collections import Counter

from conftest import DEMO
from llm_aug.classifiers.registry import get_method
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.jobs import train as T

FINE = scheme_for_task("fine")


def test_sample_keeps_label_shares_and_is_seeded():
    data = load_dataset(DEMO / "train.tsv", FINE)
    sample = T.selection_sample(data, 33, seed=0)
    assert 30 <= len(sample) <= 36
    full, part = Counter(data.labels), Counter(sample.labels)
    assert all(abs(part[k] - full[k] * len(sample) / len(data)) <= 1 for k in full)
    assert sample.ids == T.selection_sample(data, 33, seed=0).ids
    assert T.selection_sample(data, 1000, seed=0) is data


def test_candidates_on_the_sample_winner_on_all_rows(monkeypatch):
    train, val = load_dataset(DEMO / "train.tsv", FINE), load_dataset(DEMO / "val.tsv", FINE)
    sizes: list[int] = []
    real_fit = T.fit

    def recording_fit(spec, params, seed, data, val_data):
        sizes.append(len(data))
        return real_fit(spec, params, seed, data, val_data)

    monkeypatch.setattr(T, "fit", recording_fit)
    spec = get_method("tfidf-lr")
    params, est, table = T.select_on_val(spec, train, val, FINE, 0, sample=40)
    assert len(table) > 1 and len(set(sizes[:-1])) == 1
    assert sizes[0] < len(train) and sizes[-1] == len(train) and len(sizes) == len(table) + 1
    assert params == max(table, key=lambda r: r["val_weighted_f1"])["params"]


def test_small_sets_select_exactly_as_before(monkeypatch):
    train, val = load_dataset(DEMO / "train.tsv", FINE), load_dataset(DEMO / "val.tsv", FINE)
    sizes: list[int] = []
    real_fit = T.fit
    monkeypatch.setattr(T, "fit", lambda *a: sizes.append(len(a[3])) or real_fit(*a))
    T.select_on_val(get_method("tfidf-lr"), train, val, FINE, 0)
    assert set(sizes) == {len(train)}
    assert "sample" not in T.selection_note(len(train), 12)
    assert "stratified sample of 20,000 of 100,000" in T.selection_note(100_000, 16)
