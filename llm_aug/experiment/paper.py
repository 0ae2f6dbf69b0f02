"""What the SOS-1K paper reports, to print beside our numbers (never mixed with them).

The paper's numbers are on its TEST split; ours come from the VAL split unless a run
was explicitly scored on test. Percent F1 as printed in the abstract.
"""

from __future__ import annotations

CITATION = ("Qi et al., 'SOS-1K: A Fine-grained Suicide Risk Classification Dataset for Chinese "
            "Social Media Analysis', IEEE SMC 2024, arXiv:2404.12659")
SPLIT = "test"

# Per task: the best model's reported score (the abstract names Chinese MentalBERT as the
# strongest of the seven pre-trained models on both tasks).
BEST = {
    "binary": {"metric": "f1", "label": "F1", "value": 88.39,
               "system": "paper: best of 7 pre-trained models (Chinese MentalBERT)"},
    "fine": {"metric": "weighted_f1", "label": "weighted F1", "value": 50.89,
             "system": "paper: best of 7 pre-trained models (Chinese MentalBERT)"},
}
# Largest F1 gain from data augmentation, in percentage points (fine-grained task).
AUGMENTATION_GAIN_MAX = 4.65


def paper_note() -> str:
    """One line saying where the paper's numbers come from and how they differ from ours."""
    return (f"Paper rows: numbers reported by {CITATION}, on the paper's TEST split "
            f"(as printed, in %); not reproduced here and not comparable one-to-one with VAL numbers.")
