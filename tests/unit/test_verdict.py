"""Every screen says the same answer: the augmented set against real and the best baseline."""

from __future__ import annotations

from augflow.evaluation.verdict import run_title, verdict_line
from augflow.stages.evaluate import against_baselines, evaluate_report_md


def _s(mean: float, lo: float, hi: float) -> dict:
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


def _entry() -> dict:
    arms = {a: {"accuracy": _s(m, m - 0.02, m + 0.02), "macro_f1": _s(m, m - 0.02, m + 0.02)}
            for a, m in (("real", 0.80), ("augmented", 0.86), ("smote", 0.79), ("classic", 0.87))}
    gain_vs = {"real": {"accuracy": _s(0.06, 0.03, 0.09), "macro_f1": _s(0.06, 0.03, 0.09)},
               "smote": {"accuracy": _s(0.07, 0.04, 0.10), "macro_f1": _s(0.07, 0.04, 0.1)},
               "classic": {"accuracy": _s(-0.01, -0.03, 0.01), "macro_f1": _s(-0.01, -0.03, 0.01)}}
    return against_baselines(arms, gain_vs)


def test_the_entry_names_the_best_baseline_and_both_verdicts():
    e = _entry()
    assert e["best_baseline"] == "classic"
    assert e["gain"] == e["gain_vs"]["real"]
    assert e["verdict"] == {"vs_real": "better", "vs_best_baseline": "level"}
    line = verdict_line("cnn", e)
    assert line.startswith("**cnn**: augmented 0.8600 is **better than real** (+0.0600")
    assert "**level with the best baseline, classic** (-0.0100 [-0.0300, +0.0100])" in line


def test_the_evaluate_report_opens_with_the_answer_and_lists_every_paired_gain():
    result = {"n_seeds": 2, "n_test": 100, "classifiers": {"cnn": _entry()},
              "classic_transforms": "rotation ±15°",
              "promotion": {"promote": False, "reason": "no"}, "added_weight_fraction": 0.3,
              "fidelity_vs_test": {"real_train": {}, "generated": {}, "kept": {}}}
    text = evaluate_report_md(result)
    assert text.index("## Did augmentation help?") < text.index("## cnn")
    assert "**level with the best baseline, classic**" in text
    for arm in ("real", "smote", "classic"):
        assert f"| {arm} | " in text.split("Paired gain of the augmented set")[1]
    assert "rotation ±15°" in text


def test_the_run_title_says_for_which_classifiers_it_helped():
    """The MLflow runs table's first column answers the question before any click."""
    level = dict(_entry(), verdict={"vs_real": "level", "vs_best_baseline": "level"})
    title = run_title({"svm_rbf": _entry(), "logreg": level, "cnn": _entry()})
    assert title == "2/3 beat real, 0/3 beat the best baseline | pipeline"
    worse = dict(_entry(), verdict={"vs_real": "worse", "vs_best_baseline": "worse"})
    assert run_title({"logreg": worse, "cnn": _entry()}) == (
        "1/2 beat real (1 worse), 0/2 beat the best baseline (1 worse) | pipeline")
    assert run_title({}) == "pipeline"


def test_promotion_follows_most_classifiers_or_the_one_named():
    from augflow.config import EvaluateConfig
    from augflow.stages.evaluate import promotion_decision

    def gain(lo):
        return {"gain": {"accuracy": _s(lo + 0.02, lo, lo + 0.04)}}

    result = {"classifiers": {"logreg": gain(-0.01), "svm_rbf": gain(0.03),
                              "random_forest": gain(0.02)}}
    most = promotion_decision(result, EvaluateConfig())           # the default: majority
    assert most["promote"] and most["cleared"] == ["svm_rbf", "random_forest"]
    assert "for 2 of 3 classifiers (more than half)" in most["reason"]
    one = promotion_decision(result, EvaluateConfig(promote_classifier="logreg"))
    assert not one["promote"] and one["reason"].startswith("accuracy gain of logreg: +0.0100")
    result["classifiers"]["svm_rbf"] = gain(-0.02)               # 1 of 3: not a majority
    assert not promotion_decision(result, EvaluateConfig())["promote"]
    two = {"classifiers": {"logreg": gain(0.01), "random_forest": gain(-0.01)}}
    assert not promotion_decision(two, EvaluateConfig(classifiers=("logreg", "random_forest")))[
        "promote"]                                                # half is not more than half
    assert not promotion_decision(result | {"classifiers": {"svm_rbf": gain(0.03)}},
                                  EvaluateConfig(), added_weight=0.0)["promote"]
