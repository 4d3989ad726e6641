"""The augmented set's mix: weights, the choice on validation, local variants, and that none of
it reads the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augflow.config import AugmentConfig, config_from_dict
from augflow.paths import Paths
from conftest import TINY

CFG = config_from_dict(TINY)


def test_mix_weights_give_each_source_its_share_and_sum_to_the_real_rows():
    from augflow.stages.augment import mix_weights

    kinds = np.array(["real"] * 10 + ["classic"] * 40 + ["synthetic"] * 25, dtype=object)
    w = mix_weights(kinds, {"classic": 0.5, "synthetic": 0.25})
    assert w.sum() == pytest.approx(10)
    real = w[kinds == "real"].sum()
    assert w[kinds == "classic"].sum() / real == pytest.approx(0.5)
    assert w[kinds == "synthetic"].sum() / real == pytest.approx(0.25)
    assert np.allclose(w[kinds == "classic"], w[kinds == "classic"][0])
    zero = mix_weights(kinds, {"classic": 0.0, "synthetic": 0.0})
    assert (zero[kinds != "real"] == 0).all() and zero.sum() == pytest.approx(10)


def test_choose_scale_moves_off_the_configured_shares_only_beyond_noise():
    from augflow.stages.augment import choose_scale

    rng = np.random.default_rng(0)
    base = (rng.uniform(size=40) < 0.8).astype(float)
    one_more = base.copy()
    one_more[np.flatnonzero(base == 0)[0]] = 1.0          # one row better: within noise
    assert choose_scale({0.0: one_more, 1.0: base, 2.0: base}) == 1.0
    much_better = np.ones(40)                             # every miss fixed: beyond noise
    assert choose_scale({0.0: base, 1.0: base, 2.0: much_better}) == 2.0
    worse = base * (rng.uniform(size=40) < 0.5)
    assert choose_scale({0.0: base, 0.5: base, 1.0: worse}) == 0.0   # ties: the smaller scale


def _copy_of(paths: Paths, to) -> Paths:
    """A private copy of a workspace's data/, for a test that rewrites its files."""
    import shutil

    shutil.copytree(paths.root / "data", to / "data")
    return Paths(to)


def test_classic_rows_take_the_places_of_rejected_samples():
    from augflow.stages.augment import classic_count

    cfg = AugmentConfig(classic_per_kept=2.0)
    # every sample kept: 2 classic rows per kept row; none kept: 3 per generated one
    assert classic_count(cfg, kept=50, generated=50) == 100
    assert classic_count(cfg, kept=0, generated=50) == 150
    for kept in (0, 7, 31, 50):      # the class's added rows do not depend on the filter
        assert kept + classic_count(cfg, kept, 50) == 150
    # without replacement (or without a generated count) only the kept rows' partners
    assert classic_count(cfg.model_copy(update={"replace_rejected": False}), 0, 50) == 0
    assert classic_count(cfg, kept=7, generated=None) == 14
    assert classic_count(cfg.model_copy(update={"classic_per_class": 9}), 0, 50) == 9


def test_a_class_the_filter_rejected_still_gets_classic_rows(filtered, tmp_path):
    """On the 28x28 letters at 5 labels per class the filter kept nothing in a draw: the
    augmented set holds classic rows in their place, as many as if every sample passed."""
    from augflow.stages.augment import run_augment

    paths = _copy_of(filtered, tmp_path)
    kept = pd.read_parquet(paths.kept)
    kept.iloc[:0].to_parquet(paths.kept, index=False)
    n = CFG.generate.n_per_class
    m = run_augment(AugmentConfig(select="fixed"), ["logreg"], 0, paths, generated_per_class=n)
    df = pd.read_parquet(paths.augmented)
    classic = df["origin"].astype(str).str.startswith("classic:")
    train = pd.read_parquet(paths.split("train"))
    assert m["n_synthetic"] == 0 and (~classic).sum() == len(train)
    per_class = df.loc[classic, "label"].value_counts().to_dict()
    per_kept = AugmentConfig().classic_per_kept
    assert per_class == {c: int((1 + per_kept) * n) for c in train["label"].unique()}
    # without a generated count, the old rule: no kept rows, no classic rows
    run_augment(AugmentConfig(select="fixed"), ["logreg"], 0, paths)
    assert not pd.read_parquet(paths.augmented)["origin"].astype(str).str.startswith(
        "classic:").any()


def test_count_alone_gives_every_classifier_the_count_weights(filtered, tmp_path):
    """augment.schemes [count]: one weighting for every classifier; validation decides only
    between it and nothing added, and says so in the report."""
    from augflow.data.schema import read_schema, read_xy
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.stages.augment import run_augment

    paths = _copy_of(filtered, tmp_path)
    cfg = AugmentConfig(schemes=["count"], synthetic_row_weight=1.0, classic_per_kept=1.0)
    m = run_augment(cfg, ["logreg", "random_forest"], 0, paths,
                    generated_per_class=CFG.generate.n_per_class)
    mix = m["mix"]
    assert mix["count_only"] and mix["scheme"] == {"logreg": "count", "random_forest": "count"}
    assert set(mix["val_accuracy"]) == {"0", "1"} and mix["scale"] in (0.0, 1.0)
    assert set(mix["val_accuracy_count"]) == {"logreg", "random_forest"}
    df = pd.read_parquet(paths.augmented)
    expected = 1.0 if mix["scale"] > 0 else 0.0
    added = df["origin"] != "real"
    assert (df.loc[added, "sample_weight_count"] == expected).all()
    assert (df.loc[~added, "sample_weight_count"] == 1.0).all()
    # 0 is real rows alone: the added rows (weight 0) are left out of the fit
    schema = read_schema(paths.schema)
    xr, yr = read_xy(paths.split("train"), schema)
    xv, yv = read_xy(paths.split("val"), schema)
    alone = fit_weighted(make_classifier("logreg", 0), xr, yr).predict(xv) == yv
    assert mix["val_accuracy_per_classifier"]["logreg"]["0"] == pytest.approx(alone.mean())
    report = paths.augment_report.read_text()
    assert "for every classifier" in report and "added rows (0: real alone" in report
    assert "Weights per classifier" not in report
    # select fixed: the count weights too, for every classifier
    fixed = run_augment(cfg.model_copy(update={"select": "fixed"}), ["logreg"], 0, paths,
                        generated_per_class=CFG.generate.n_per_class)["mix"]
    assert fixed["count_only"] and fixed["scheme"] == {"logreg": "count"}
    assert fixed["row_weights"]["logreg"] == {"real": 1.0, "classic": 1.0, "synthetic": 1.0}
    with pytest.raises(ValueError):
        AugmentConfig(schemes=[])
    with pytest.raises(ValueError):
        AugmentConfig(schemes=["count", "count"])


def test_augment_config_needs_scale_one():
    with pytest.raises(ValueError):
        AugmentConfig(scales=(0.0, 0.5))


def test_local_variants_at_scale_zero_are_the_real_rows():
    """x + decode(mu) - decode(mu): a variant with no latent move is its parent, exactly."""
    from augflow.models.cvae import CVAE
    from augflow.models.latent import local_variants

    torch.manual_seed(0)
    model = CVAE(12, 3, latent_dim=4, hidden_dims=(16,)).eval()
    x, y = torch.rand(9, 12), torch.arange(9) % 3
    parents = torch.tensor([0, 4, 4, 8])
    same = local_variants(model, x, y, parents, 0.0)
    assert torch.allclose(same, x[parents], atol=1e-6)
    moved = local_variants(model, x, y, parents, 2.0, torch.Generator().manual_seed(1))
    assert not torch.allclose(moved, x[parents], atol=1e-4)
    assert moved.min() >= 0 and moved.max() <= 1


def test_fit_weighted_zero_weight_rows_do_not_count():
    from augflow.evaluation.classifiers import fit_weighted, make_classifier

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (40, 5)), rng.normal(3, 1, (40, 5))]).astype(np.float32)
    y = np.repeat([0, 1], 40)
    flipped = np.concatenate([y, 1 - y])            # every row again, with the wrong label
    xx = np.vstack([x, x])
    ignore = np.concatenate([np.ones(80), np.zeros(80)])
    for name in ("logreg", "svm_rbf", "random_forest", "mlp"):
        model = fit_weighted(make_classifier(name, 0), xx, flipped, ignore)
        assert (model.predict(x) == y).mean() > 0.95, name
        # unweighted the flipped copies cancel the real rows: far from that accuracy
        plain = fit_weighted(make_classifier(name, 0), xx, flipped, None)
        assert (plain.predict(x) == y).mean() < 0.9 or name == "random_forest", name


@pytest.fixture(scope="module")
def filtered(tmp_path_factory) -> Paths:
    """A tiny digits workspace run to filter, with the test split deleted after prepare."""
    from augflow.stages.filter import run_filter
    from augflow.stages.generate import run_generate
    from augflow.stages.prepare import run_prepare
    from augflow.stages.train import run_train

    paths = Paths(tmp_path_factory.mktemp("mix"))
    cfg = CFG.model_copy(update={"data": CFG.data.model_copy(update={"labels_per_class": 10})})
    run_prepare(cfg.data, cfg.seed, paths)
    paths.split("test").unlink()
    run_train(cfg.vae.model_copy(update={"train_copies": 2}), cfg.seed, paths)
    run_generate(cfg.generate, cfg.seed, paths)
    run_filter(cfg.filter, cfg.extractor, cfg.seed, paths)
    return paths


def test_augment_writes_weighted_rows_in_the_users_format_without_the_test_split(filtered):
    from augflow.data.augmented import read_augmented
    from augflow.data.schema import read_schema
    from augflow.stages.augment import run_augment

    paths = filtered
    assert not paths.split("test").exists()
    # both schemes, chosen per classifier (schemes [count] alone has its own test)
    cfg = AugmentConfig(schemes=["share", "count"], classic_per_kept=2.0,
                        synthetic_row_weight=0.25)
    m = run_augment(cfg, ["logreg"], 0, paths)
    df = pd.read_parquet(paths.augmented)
    assert {"label", "origin", "sample_weight"} <= set(df.columns)
    assert (df["origin"] == "real").sum() == m["n_real"] == 100
    classic = df["origin"].str.startswith("classic:")
    assert classic.sum() == m["n_classic"] > 0
    assert m["n_synthetic"] == len(pd.read_parquet(paths.kept))
    assert df["sample_weight"].sum() == pytest.approx(m["n_real"])
    mix = m["mix"]
    assert mix["select"] == "val" and set(mix["val_accuracy"]) == {"0", "0.5", "1", "2"}
    assert mix["n_val"] == 50 and mix["scale"] in (0.0, 0.5, 1.0, 2.0)
    assert set(mix["val_accuracy_per_classifier"]["logreg"]) == set(mix["val_accuracy"])
    # images: the count scheme's column too, and a scheme per classifier chosen on validation
    assert (df.loc[df["origin"] != "real", "sample_weight_count"] > 0).all() == (mix["scale"] > 0)
    assert (df.loc[~classic & (df["origin"] != "real"), "sample_weight_count"]
            .isin([0.0, cfg.synthetic_row_weight]).all())
    assert mix["scheme"]["logreg"] in ("share", "count")
    weights = mix["row_weights"]["logreg"]
    column = "sample_weight" if mix["scheme"]["logreg"] == "share" else "sample_weight_count"
    assert df.loc[df["origin"] == "real", column].iloc[0] == pytest.approx(weights["real"])
    if mix["scale"] > 0:
        assert set(mix["val_accuracy_count"]) == {"logreg"}
        assert "Weights per classifier" in paths.augment_report.read_text()
    assert "validation rows" in paths.augment_report.read_text()
    x, y, w = read_augmented(paths.augmented, read_schema(paths.schema))
    assert len(x) == len(y) == len(df) and set(w) == {"share", "count"}
    assert all(len(v) == len(df) for v in w.values())
    # classic_per_kept (2) classic rows per kept synthetic row of each class
    kept = pd.read_parquet(paths.kept)["label"].value_counts()
    assert df.loc[classic, "label"].value_counts().to_dict() == {
        k: int(round(2 * n)) for k, n in kept.items()}
    # classic rows name the real row they shift; it has the same class
    parent = df.loc[classic, "origin"].str.split(":").str[1].astype(int).to_numpy()
    train = pd.read_parquet(paths.split("train"))
    assert (train["label"].to_numpy()[parent] == df.loc[classic, "label"].to_numpy()).all()


def test_no_amount_helps_gives_added_rows_weight_zero_and_says_so(filtered):
    """Kept rows that are real rows with a wrong label: validation says no amount helps."""
    from augflow.data.augmented import added_weight_fraction
    from augflow.stages.augment import run_augment
    from augflow.stages.evaluate import promotion_decision

    paths = filtered
    kept = pd.read_parquet(paths.kept)
    train = pd.read_parquet(paths.split("train"))
    bad = train.copy()
    bad["label"] = (bad["label"] + 1) % 10
    bad["sample_id"] = [f"bad-{i}" for i in range(len(bad))]
    pd.concat([bad] * 3, ignore_index=True).to_parquet(paths.kept, index=False)
    try:
        cfg = AugmentConfig(classic_share=0.0, synthetic_share=1.0)
        m = run_augment(cfg, ["logreg", "svm_rbf"], 0, paths)
    finally:
        kept.to_parquet(paths.kept, index=False)
    assert m["mix"]["scale"] == 0.0 and not m["mix"]["helped_on_val"]
    assert m["mix"]["val_accuracy"]["0"] > m["mix"]["val_accuracy"]["1"]
    assert "No amount of added data helped on validation" in paths.augment_report.read_text()
    assert added_weight_fraction(paths.augmented) == 0.0
    evaluation = {"classifiers": {"logreg": {"gain": {"accuracy": {
        "mean": 0.05, "ci_low": 0.02, "ci_high": 0.08}}}}}
    decision = promotion_decision(evaluation, CFG.evaluate, added_weight=0.0)
    assert not decision["promote"] and "no amount" in decision["reason"]
    assert promotion_decision(evaluation, CFG.evaluate, added_weight=0.3)["promote"]


def test_local_samples_name_a_real_parent_of_their_class(filtered):
    samples = pd.read_parquet(filtered.samples)
    train = pd.read_parquet(filtered.split("train"))
    parent = samples["gen_parent"].to_numpy()
    assert (parent >= 0).all()
    assert (train["label"].to_numpy()[parent] == samples["label"].to_numpy()).all()
    # every real row of a class is varied about equally often
    counts = np.bincount(parent, minlength=len(train))
    assert counts.max() - counts.min() <= 1


def test_evaluate_trains_each_classifier_on_the_weights_of_its_scheme():
    """The augment stage's mix.scheme routes each classifier to its column: here the added rows
    carry flipped labels, weigh 0 under share and 1 under count, so the two fits differ."""
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.runners import FitJob
    from augflow.stages.evaluate import _FitPredict

    rng = np.random.default_rng(0)
    x = rng.random((80, 4)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    y_aug = np.r_[y[:40], 1 - y[40:]]
    share, count = np.r_[np.ones(40), np.zeros(40)], np.ones(80)
    xt = rng.random((50, 4)).astype(np.float32)
    data = {"real": (x[:40], y[:40]), "kept": (x[40:], y_aug[40:]),
            "generated": (x[40:], y_aug[40:]), "augmented": (x, y_aug, share),
            "augmented_weights": {"share": share, "count": count},
            "scheme": {"logreg": "count", "random_forest": "share"}}
    fit = _FitPredict(data, xt, None)
    for clf, w in (("logreg", count), ("random_forest", share)):
        expected = fit_weighted(make_classifier(clf, 3), x, y_aug, w).predict(xt)
        assert np.array_equal(fit(FitJob(clf, "augmented", 3)), expected)
    other = fit_weighted(make_classifier("logreg", 3), x, y_aug, share).predict(xt)
    assert not np.array_equal(fit(FitJob("logreg", "augmented", 3)), other)


def test_evaluate_stops_when_a_classifiers_scheme_has_no_column(filtered):
    """mix.scheme says count, the file was written without the count column (schemes: [share]):
    one error naming the file, the column and the rule, before any classifier is fitted."""
    from augflow.data.schema import read_schema
    from augflow.errors import AugflowError
    from augflow.stages.augment import run_augment
    from augflow.stages.evaluate import arm_data

    paths = filtered
    run_augment(AugmentConfig(schemes=["share"]), ["logreg"], 0, paths)
    assert "sample_weight_count" not in pd.read_parquet(paths.augmented).columns
    with pytest.raises(AugflowError) as err:
        arm_data(paths, read_schema(paths.schema), {"logreg": "count"})
    line = str(err.value)
    assert line.startswith(f"{paths.augmented}: sample_weight_count: logreg was given the count")
    assert "\n" not in line
    assert (err.value.field, err.value.rule) == ("sample_weight_count", "required")


def test_seed_free_fits_run_once_and_give_what_every_seed_would(monkeypatch):
    """predictions() fits logreg and the SVM once on the seed-free arms and repeats the row;
    the result is what fitting under every seed gives (the seeds really are ignored), and
    the forest, which draws with its seed, still gets one fit per seed."""
    from augflow.evaluation.arms import SEED_FREE_ARMS
    from augflow.evaluation.classifiers import SEED_FREE_CLASSIFIERS
    from augflow.runners import FitJob
    from augflow.stages import evaluate

    rng = np.random.default_rng(1)
    x = rng.random((60, 64)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    x[:, 0] += y
    xt = rng.random((30, 64)).astype(np.float32)
    data = {"real": (x, y), "kept": (x[:30], y[:30]), "generated": (x[:30], y[:30]),
            "augmented": (x, y, np.ones(60)), "augmented_weights": {"share": np.ones(60)},
            "scheme": {}}
    arms = ["real", "augmented", "smote", "classic"]
    fits: list[FitJob] = []
    plain = evaluate._FitPredict.__call__

    def counted(self, job):
        fits.append(job)
        return plain(self, job)

    monkeypatch.setattr(evaluate._FitPredict, "__call__", counted)
    for clf in ("logreg", "svm_rbf", "random_forest"):
        fits.clear()
        got = evaluate.predictions(clf, arms, data, xt, (8, 8, 1), 3, 10)
        n_fits = len(fits)
        every = evaluate._FitPredict(data, xt, (8, 8, 1))
        for arm in arms:
            assert np.array_equal(got[arm], np.vstack([every(FitJob(clf, arm, 10 + s))
                                                       for s in range(3)])), (clf, arm)
        once = clf in SEED_FREE_CLASSIFIERS
        assert n_fits == sum(1 if once and a in SEED_FREE_ARMS else 3 for a in arms)
    assert SEED_FREE_CLASSIFIERS == {"logreg", "svm_rbf"}


def test_capped_validation_choice_fits_a_subsample_and_writes_every_row(filtered):
    """evaluate.max_real_rows under the real rows: the choice fits on a stratified 40 of the
    100 real rows and what was made from them, the file still holds every row, and the
    report says how many rows the choice saw."""
    from augflow.stages.augment import fit_subset, run_augment

    paths = filtered
    full = run_augment(AugmentConfig(), ["logreg"], 0, paths)
    assert full["mix"]["fit_rows"] == {"real": 100, "all": full["n_total"]}
    m = run_augment(AugmentConfig(), ["logreg"], 0, paths, max_real_rows=40)
    assert (m["n_real"], m["n_total"]) == (100, full["n_total"])
    fit = m["mix"]["fit_rows"]
    assert fit["real"] == 40 and 40 < fit["all"] < 0.6 * m["n_total"]
    assert "a stratified 40 of the 100 real rows" in paths.augment_report.read_text()
    df = pd.read_parquet(paths.augmented)
    rows = fit_subset(df, pd.read_parquet(paths.kept), df["label"].to_numpy(), 40, 0)
    real = df.index[(df["origin"] == "real").to_numpy() & rows]
    assert np.bincount(df.loc[real, "label"]).tolist() == [4] * 10
    classic = df.loc[rows & df["origin"].str.startswith("classic:").to_numpy(), "origin"]
    assert set(classic.str.split(":").str[1].astype(int)) <= set(real)


def test_the_cnn_gets_the_images_shape_in_augment_and_evaluate():
    """evaluate.classifiers: [cnn] through both callers: augment's validation fits and
    evaluate's fit-predict jobs hand the schema's image shape to the cnn, which learns (the
    class is which half of the 8x8 image is bright); on a table (no shape) it is refused."""
    from augflow.errors import AugflowError
    from augflow.runners import FitJob
    from augflow.stages.augment import val_correct
    from augflow.stages.evaluate import _FitPredict

    def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 2
        img = rng.uniform(0, 0.2, (n, 8, 8))
        for i, k in enumerate(y):
            img[i, :, 4 * k:4 * k + 4] += 0.7
        return img.reshape(n, 64).astype(np.float32), y.astype(np.int64)

    x, y = images(40, 0)
    xt, yt = images(30, 1)
    data = {"real": (x, y), "kept": (x[:0], y[:0]), "generated": (x[:0], y[:0]),
            "augmented": (x, y, np.ones(len(y)))}
    pred = _FitPredict(data, xt, (8, 8, 1))(FitJob("cnn", "real", 0))
    assert (pred == yt).mean() > 0.9
    hits = val_correct(x, y, {1.0: np.ones(len(y))}, xt, yt, ["cnn"], 0, image_shape=(8, 8, 1))
    assert hits[1.0]["cnn"].mean() > 0.9
    with pytest.raises(AugflowError, match="evaluate.classifiers: cnn needs image data"):
        _FitPredict(data, xt, None)(FitJob("cnn", "real", 0))


def test_weight_zero_rows_leave_a_fit_exactly_as_the_real_rows_alone():
    """Nothing added (scale 0) must be the real arm exactly: the scaler and the forest's
    bootstrap never see a weight-0 row."""
    from augflow.evaluation.classifiers import fit_weighted, make_classifier

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (60, 4)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(np.int64)
    extra = rng.normal(5, 3, (200, 4)).astype(np.float32)      # far off: would move a scaler
    xx, yy = np.vstack([x, extra]), np.concatenate([y, rng.integers(0, 2, 200)])
    w = np.concatenate([np.ones(60), np.zeros(200)])
    probe = rng.normal(0, 1.5, (300, 4)).astype(np.float32)
    for name in ("logreg", "svm_rbf", "random_forest"):
        alone = fit_weighted(make_classifier(name, 3), x, y).predict(probe)
        zeroed = fit_weighted(make_classifier(name, 3), xx, yy, w).predict(probe)
        assert np.array_equal(alone, zeroed), name
