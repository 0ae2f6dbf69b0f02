"""compute_metrics against numbers derived by hand for tiny examples."""

from __future__ import annotations

import pytest

from llm_aug.core.errors import UserError
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.metrics import collapse_binary, compute_metrics

SOS = load_scheme("sos11")
BIN = load_scheme("binary")

# Six posts. Item 3 (gold 2 -> 3) and item 5 (gold 7 -> 6) are off by one; the last
# answer could not be parsed (None).
GOLD = [0, 2, 2, 5, 7, 10]
PRED = [0, 2, 3, 5, 6, None]


@pytest.fixture(scope="module")
def m() -> dict:
    return compute_metrics(GOLD, PRED, SOS, binary_gold=[0, 0, 0, 1, 1, 1])


def test_accuracy_and_invalid(m):
    # Correct: items 1, 2, 4 -> 3/6. One None out of 6.
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["invalid_rate"] == pytest.approx(1 / 6)


def test_f1_by_hand(m):
    # Per class (support, predicted, tp -> P, R, F1):
    #   0: (1, 1, 1) -> 1, 1, 1          2: (2, 1, 1) -> 1, 1/2, 2/3
    #   3: (0, 1, 0) -> 0, 0, 0          5: (1, 1, 1) -> 1, 1, 1
    #   6: (0, 1, 0) -> 0, 0, 0          7: (1, 0, 0) -> 0, 0, 0
    #  10: (1, 0, 0) -> 0, 0, 0   (the None answer is a miss for 10, a hit for no class)
    # weighted F1 = (1*1 + 2*2/3 + 1*1) / 6 = (10/3) / 6 = 5/9
    # macro over the 7 classes present in gold or pred = (1 + 2/3 + 1) / 7 = 8/21
    assert m["weighted_f1"] == pytest.approx(5 / 9)
    assert m["macro_f1"] == pytest.approx(8 / 21)
    # weighted P = (1 + 2*1 + 1) / 6 = 2/3; weighted R = accuracy = 1/2
    assert m["weighted_precision"] == pytest.approx(2 / 3)
    assert m["weighted_recall"] == pytest.approx(0.5)
    # macro P = (1 + 1 + 1) / 7 = 3/7; macro R = (1 + 1/2 + 1) / 7 = 5/14
    assert m["macro_precision"] == pytest.approx(3 / 7)
    assert m["macro_recall"] == pytest.approx(5 / 14)


def test_ordinal_by_hand(m):
    # within1 over all 6: the 5 valid answers are within 1, the None is a miss -> 5/6.
    assert m["within1"] == pytest.approx(5 / 6)
    # MAE over the 5 valid answers: (0 + 0 + 1 + 0 + 1) / 5 = 0.4.
    assert m["ordinal_n"] == 5
    assert m["mae"] == pytest.approx(0.4)
    # QWK over the valid pairs, weights (i-j)^2: observed sum = 1 + 1 = 2;
    # expected = sum over all (g, p) pairs of (g-p)^2 / 5, gold {0,2,2,5,7} x pred {0,2,3,5,6}:
    #   g=0: 0+4+9+25+36 = 74; g=2: 4+0+1+9+16 = 30 (x2); g=5: 25+9+4+0+1 = 39;
    #   g=7: 49+25+16+4+1 = 95; total 268 -> 53.6.  QWK = 1 - 2/53.6 = 129/134.
    assert m["qwk"] == pytest.approx(129 / 134)


def test_per_class_and_confusion(m):
    pc = m["per_class"]
    assert list(pc) == [str(i) for i in range(11)]
    assert pc["2"] == pytest.approx(
        {"name": "clear suffering", "precision": 1.0, "recall": 0.5, "f1": 2 / 3,
         "support": 2, "predicted": 1, "invalid": 0}
    )
    assert pc["10"]["support"] == 1 and pc["10"]["invalid"] == 1 and pc["10"]["f1"] == 0
    conf = m["confusion"]
    assert len(conf) == 11 and all(len(r) == 11 for r in conf)
    assert conf[2][2] == 1 and conf[2][3] == 1 and conf[7][6] == 1
    # the None answer is in no cell: 5 counted of 6 items
    assert sum(map(sum, conf)) == 5 and sum(conf[10]) == 0


def test_binary_collapse_scored_against_binary_gold(m):
    # Collapsed at 6: [0, 0, 0, 0, 1, None]; binary gold [0, 0, 0, 1, 1, 1] (item 4 is
    # level 5 but annotated high). Correct: items 1, 2, 3, 5 -> 4/6.
    # high: support 3, predicted 1, tp 1 -> P 1, R 1/3, F1 = 2*1/(3+1) = 1/2
    # low: support 3, predicted 4, tp 3 -> F1 = 6/7; weighted = macro = (6/7 + 1/2)/2 = 19/28
    b = m["binary"]
    assert b["threshold"] == 6
    assert b["accuracy"] == pytest.approx(4 / 6)
    assert b["f1"] == pytest.approx(0.5)
    assert b["precision"] == pytest.approx(1.0) and b["recall"] == pytest.approx(1 / 3)
    assert b["weighted_f1"] == pytest.approx(19 / 28)
    assert b["macro_f1"] == pytest.approx(19 / 28)
    assert b["invalid_rate"] == pytest.approx(1 / 6)
    assert b["confusion"] == [[3, 0], [1, 1]]


def test_binary_threshold_override():
    # Threshold 5: [0, 0, 0, 1, 1, None] vs [0, 0, 0, 1, 1, 1] -> only the None is wrong.
    m = compute_metrics(GOLD, PRED, SOS, binary_gold=[0, 0, 0, 1, 1, 1], threshold=5)
    assert m["binary"]["accuracy"] == pytest.approx(5 / 6)
    assert collapse_binary([5, 6, None, 10], 6) == [0, 1, None, 1]


def test_none_and_out_of_scheme_preds_count_wrong():
    # 11 is not a level: treated like None, never as a class.
    m = compute_metrics([3, 3, 4, 4], [3, None, 11, 4], SOS)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["invalid_rate"] == pytest.approx(0.5)
    assert m["ordinal_n"] == 2 and m["mae"] == pytest.approx(0.0)
    assert m["within1"] == pytest.approx(0.5)
    assert m["per_class"]["3"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["3"]["precision"] == pytest.approx(1.0)


def test_all_invalid_gives_undefined_ordinal():
    m = compute_metrics([1, 2], [None, None], SOS)
    assert m["accuracy"] == 0 and m["invalid_rate"] == 1
    assert m["mae"] is None and m["qwk"] is None and m["ordinal_n"] == 0
    assert m["weighted_f1"] == 0


def test_binary_scheme_has_no_ordinal_keys():
    # gold [0,0,1,1], pred [0,1,1,1]: acc 3/4; class 1 F1 = 2*2/(2+3) = 4/5,
    # class 0 F1 = 2*1/(2+1) = 2/3; macro = weighted = (4/5 + 2/3)/2 = 11/15.
    m = compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], BIN)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx(11 / 15)
    assert m["weighted_f1"] == pytest.approx(11 / 15)
    assert "mae" not in m and "qwk" not in m and "binary" not in m


def test_errors():
    with pytest.raises(UserError, match="2 gold labels but 1"):
        compute_metrics([0, 1], [0], SOS)
    with pytest.raises(UserError, match="outside"):
        compute_metrics([0, 12], [0, 1], SOS)
    with pytest.raises(UserError, match="no binary threshold"):
        compute_metrics([0, 1], [0, 1], BIN, binary_gold=[0, 1])
    with pytest.raises(UserError, match="no items"):
        compute_metrics([], [], SOS)
