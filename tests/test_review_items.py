"""load_review_run on a real augment run: items, exemplars, nearest training posts, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from augment_run import make_run
from llm_aug.core.errors import UserError
from llm_aug.data.normalize import normalize_for_match
from llm_aug.jobs.review import items as items_mod
from llm_aug.jobs.review.items import load_review_run, nearest
from llm_aug.jobs.review.store import Decision


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review-items"))


def _corpus(run_dir):
    return [json.loads(line) for line in (run_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]


def test_every_synthetic_row_is_an_item_with_its_sources(run_dir):
    run = load_review_run(run_dir)
    corpus = _corpus(run_dir)
    synth = [r for r in corpus if r["synthetic"]]
    originals = {r["id"]: r for r in corpus if not r["synthetic"]}
    assert [it.id for it in run.items] == [r["id"] for r in synth] and len(run.items) > 20
    assert run.task == "fine" and [lv.level for lv in run.levels] == list(range(11))
    assert all(lv.name and lv.definition and lv.definition_zh for lv in run.levels)
    for it, row in zip(run.items, synth):
        assert (it.text, it.level, it.method, it.scores) == (row["text"], row["label"], row["method"], row["scores"])
        assert [e.id for e in it.exemplars] == [i for i in row["source_ids"] if i in originals]
        assert all(e.text == originals[e.id]["text"] and e.label == originals[e.id]["label"] for e in it.exemplars)
    assert run.item(synth[3]["id"]).text == synth[3]["text"]
    with pytest.raises(KeyError):
        run.item(next(iter(originals)))  # an original row is not up for review


def test_neighbours_are_nearest_training_posts(run_dir):
    run = load_review_run(run_dir, n_neighbours=4)
    originals = {r["id"] for r in _corpus(run_dir) if not r["synthetic"]}
    for it in run.items:
        sims = [n.similarity for n in it.neighbours]
        assert len(sims) == 4 and sims == sorted(sims, reverse=True) and {n.id for n in it.neighbours} <= originals
    # an EDA or synonym rewrite stays closest to the post it rewrote
    nearest_is_source = [it.neighbours[0].id in it.source_ids for it in run.items]
    assert np.mean(nearest_is_source) > 0.9


def test_chunked_top_k_matches_a_full_cosine_matrix(run_dir, monkeypatch):
    corpus = _corpus(run_dir)
    queries = [r["text"] for r in corpus if r["synthetic"]]
    pool = [r["text"] for r in corpus if not r["synthetic"]]
    monkeypatch.setattr(items_mod, "_CHUNK_CELLS", 7 * len(pool))  # several chunks, a ragged last one
    idx, sim = nearest(queries, pool, 3)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    pool_m = vec.fit_transform([normalize_for_match(t) for t in pool])
    full = cosine_similarity(vec.transform([normalize_for_match(t) for t in queries]), pool_m)
    expect = -np.sort(-full, axis=1)[:, :3]
    np.testing.assert_allclose(sim, expect, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), expect, atol=1e-5)


def test_check_refuses_decisions_that_do_not_fit_the_row(run_dir):
    run = load_review_run(run_dir)
    it = run.items[0]
    ok = Decision(row_id=it.id, decision="relabel", level=(it.level + 1) % 11, reviewer="ann")
    assert run.check(ok) is ok
    for bad, message in [
        (Decision(row_id="nope", decision="skip", reviewer="ann"), "unknown row 'nope'"),
        (Decision(row_id=it.id, decision="accept", level=(it.level + 1) % 11, reviewer="ann"), "use relabel"),
        (Decision(row_id=it.id, decision="relabel", level=it.level, reviewer="ann"), "use accept"),
        (Decision(row_id=it.id, decision="relabel", level=11, reviewer="ann"), "not a level of the fine scheme"),
    ]:
        with pytest.raises(UserError, match=message):
            run.check(bad)


def test_refuses_folders_that_are_not_reviewable(run_dir, tmp_path):
    with pytest.raises(UserError, match="not an `llm-aug augment` output folder"):
        load_review_run(tmp_path)
    # the demo corpus is balanced already: --balance max adds no synthetic row
    empty = make_run(tmp_path / "balanced", balance="max")
    with pytest.raises(UserError, match="no synthetic rows"):
        load_review_run(empty)
