"""The answer in words: did the augmented set beat real data and the best baseline? One line per
classifier, shared by the evaluate report, the MLflow run description and the Prefect summary,
so every screen says the same thing."""

from __future__ import annotations

SAYS = {"better": "better than", "worse": "worse than", "level": "level with"}


def signed_ci(d: dict, places: int = 4, sep: str = ", ") -> str:
    """A paired gain as "+0.0428 [+0.0183, +0.0661]" (fewer places and a tighter `sep` where
    space is short: MLflow's tags)."""
    return (f"{d['mean']:+.{places}f} [{d['ci_low']:+.{places}f}{sep}"
            f"{d['ci_high']:+.{places}f}]")


def verdict_line(clf: str, r: dict) -> str:
    """One classifier's entry of metrics/evaluate.json in a sentence (markdown): its augmented
    accuracy, better / level / worse than real and than the best baseline, with the paired CIs."""
    aug = r["arms"]["augmented"]["accuracy"]["mean"]
    head = f"**{clf}**: augmented {aug:.4f} is **{SAYS[r['verdict']['vs_real']]} real** " \
           f"({signed_ci(r['gain']['accuracy'])})"
    best = r["best_baseline"]
    if best == "real":
        return head + "; real is also the best baseline."
    return (head + f" and **{SAYS[r['verdict']['vs_best_baseline']]} the best baseline, {best}** "
            f"({signed_ci(r['gain_vs'][best]['accuracy'])}).")


def verdict_tags(classifiers: dict[str, dict]) -> dict[str, str]:
    """Per classifier two short tags, `vs_real.<clf>` and `vs_best.<clf>`: "+0.043
    [+0.018,+0.066] better". MLflow 3.17's run page shows its tags above the fold, each cut at
    ~47 characters, and the Description below the fold: these carry the answer where a
    reviewer looks first, the numbers before the word so that a cut tag keeps them (seen in
    headless Chromium). The best baseline's name is the tag best_baseline.<clf>."""
    tags = {}
    for clf, r in classifiers.items():
        if "verdict" not in r:
            continue
        tags[f"vs_real.{clf}"] = (f"{signed_ci(r['gain']['accuracy'], 3, ',')} "
                                  f"{r['verdict']['vs_real']}")
        best = r["best_baseline"]
        if best != "real":
            tags[f"vs_best.{clf}"] = (f"{signed_ci(r['gain_vs'][best]['accuracy'], 3, ',')} "
                                      f"{r['verdict']['vs_best_baseline']}")
    return tags


def short_answer(classifiers: dict[str, dict]) -> str:
    """The verdict in a few words, counts first so that a cut-off display still shows them:
    "2/3 beat real, 0/3 beat the best baseline" (beat: the paired gain's CI above zero), with
    " (1 worse)" after a count when a classifier did worse. Empty for entries without verdicts."""
    rated = [r["verdict"] for r in classifiers.values() if "verdict" in r]
    if not rated:
        return ""

    def part(key: str, what: str) -> str:
        better = sum(v[key] == "better" for v in rated)
        worse = sum(v[key] == "worse" for v in rated)
        return f"{better}/{len(rated)} beat {what}" + (f" ({worse} worse)" if worse else "")

    return f"{part('vs_real', 'real')}, {part('vs_best_baseline', 'the best baseline')}"


def run_title(classifiers: dict[str, dict]) -> str:
    """The pipeline run's name in MLflow, the answer first: MLflow 3.17's runs table cuts its
    first column at ~22 characters, and "2/3 beat real, 0/3 bea…" of "2/3 beat real, 0/3 beat the
    best baseline | pipeline" still shows both counts (seen in headless Chromium). Always ends
    with "pipeline" (how a parent is told from its stage runs by name)."""
    said = short_answer(classifiers)
    return f"{said} | pipeline" if said else "pipeline"


def promotion_said(promotion: dict) -> str:
    """The promotion decision in two or three words, as every screen writes it."""
    return "promoted to champion" if promotion["promote"] else "not promoted"


def verdict_bullets(classifiers: dict[str, dict]) -> list[str]:
    """A markdown bullet per classifier entry that carries a verdict (older files have none)."""
    return [f"- {verdict_line(clf, r)}" for clf, r in classifiers.items() if "verdict" in r]


HOW_TO_READ = ("Accuracy gains of the augmented set, paired over seeds and test rows, with 95% "
               "bootstrap CIs; better / worse: the CI lies above / below zero; level: it spans zero.")
