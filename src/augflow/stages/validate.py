"""Stage validate: a Great Expectations suite over the splits; failures stop the pipeline."""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augflow.data import profile
from augflow.data.schema import Schema, read_schema
from augflow.data.table import LABEL
from augflow.errors import ValidationFailed
from augflow.io import read_parquet, write_bytes, write_json
from augflow.paths import Paths

SPLITS = ("train", "val", "test")


def row_hashes(df: pd.DataFrame, features: list[str]) -> pd.Series:
    """A content hash of each row's features: equal rows in two splits mean leakage."""
    hashed = pd.util.hash_pandas_object(df[features], index=False)   # numbers and categories
    return hashed.map(lambda h: f"{h:016x}")


def column_rules(schema: Schema, frames: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Expectations per feature column: declared rules (params data.columns) are strict; the
    rest is profiled from the train split with rules that scale with its size
    (augflow.data.profile: a hard range for gross errors, a tolerance test on train's hull,
    tolerated unseen levels). Images' pixel columns get none here: they are checked per image
    on pixel_summary."""
    train = frames["train"]
    declared = schema.declared
    images = schema.pixel_range is not None
    cols = [c for c in schema.features if not (images and c not in schema.categorical)]
    profiled = [c for c in cols if not declared.get(c)]
    numeric_profiled = [c for c in profiled if c not in schema.categorical]
    # each profiled numeric column is checked twice and each categorical once, on val and test
    n_checks = 2 * (2 * len(numeric_profiled) + len(profiled) - len(numeric_profiled))
    alpha = profile.per_check_alpha(n_checks)
    max_rows = max((len(df) for s, df in frames.items() if s != "train"), default=1)
    rules = {}
    for col in cols:
        rule: dict = {"dtype": str(train[col].dtype) if col in train else None}
        d = declared.get(col, {})
        if col in schema.categorical:
            if d.get("categories"):
                rule.update(categories=d["categories"], source="declared")
            else:
                rule.update(categories=sorted(schema.encoder.categories[col]),
                            source="profiled from train", alpha=alpha,
                            train_values=train[col].to_numpy())
        elif d:
            lo, hi = float(train[col].min()), float(train[col].max())
            pad = hi - lo   # one side's given: the other is profiled as it was before
            rule.update(min=d.get("min", lo - pad), max=d.get("max", hi + pad), source="declared")
        else:
            rule.update(profile.numeric_rule(train[col].to_numpy(np.float64), max_rows, alpha),
                        source="profiled from train")
        rules[col] = rule
    return rules


def pixel_summary(df: pd.DataFrame, features: list[str], lo: float, hi: float) -> pd.DataFrame:
    """One row per image: its pixel minimum and maximum, its count of missing or infinite values,
    and the first pixel column that is missing, infinite or outside [lo, hi] ("" if none), so a
    failure still names the column. Images get a handful of expectations on this table instead
    of ~9 per pixel column (7,072 on 28x28: 8 minutes of GX)."""
    cols = [c for c in features if c in df.columns]
    numeric = all(pd.api.types.is_numeric_dtype(df[c]) for c in cols)
    frame = df[cols] if numeric else df[cols].apply(pd.to_numeric, errors="coerce")
    values = frame.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    bad = ~finite | (values < lo) | (values > hi)
    names = np.asarray(cols + [""], dtype=object)
    first_bad = np.where(bad.any(axis=1), bad.argmax(axis=1), len(cols)) if cols else \
        np.zeros(len(df), np.int64)
    masked = np.where(finite, values, np.nan)
    some = finite.any(axis=1)
    low = np.full(len(df), np.nan)
    high = np.full(len(df), np.nan)
    low[some] = np.nanmin(masked[some], axis=1)
    high[some] = np.nanmax(masked[some], axis=1)
    return pd.DataFrame({"pixel_min": low, "pixel_max": high,
                         "non_finite": (~finite).sum(axis=1).astype(np.int64),
                         "first_bad_pixel": names[first_bad].astype(str),
                         "numeric_columns": np.full(len(df), numeric)})


def _suite_for(gx, name: str, schema: Schema, rules: dict, split_rows: int, rows: int):
    """The suite of one split of `rows` rows. Train made the profiled rules, so on train they
    are checked whole; on val and test, with the tolerances the train size calls for."""
    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"{name}_suite")
    suite.add_expectation(e.ExpectTableColumnsToMatchOrderedList(
        column_list=schema.features + [LABEL]))
    suite.add_expectation(e.ExpectTableRowCountToBeBetween(min_value=max(split_rows, 1)))
    fresh = name != "train"
    for col, rule in rules.items():
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
        if rule["dtype"]:
            suite.add_expectation(e.ExpectColumnValuesToBeOfType(column=col, type_=rule["dtype"]))
        profiled = rule["source"] != "declared"
        if "categories" in rule:
            mostly = (profile.category_tolerance(rule["train_values"], rows, rule["alpha"])
                      if profiled and fresh else 0.0)
            if mostly < 1.0:   # 1.0: too few train rows to say which levels exist
                suite.add_expectation(e.ExpectColumnValuesToBeInSet(
                    column=col, value_set=rule["categories"], mostly=round(1.0 - mostly, 6)))
            continue
        if rule["min"] is not None:
            suite.add_expectation(e.ExpectColumnValuesToBeBetween(
                column=col, min_value=rule["min"], max_value=rule["max"]))
        if profiled and fresh:
            mostly = profile.hull_tolerance(rule["n_train"], rows, rule["alpha"])
            suite.add_expectation(e.ExpectColumnValuesToBeBetween(
                column=col, min_value=rule["hull"][0], max_value=rule["hull"][1],
                mostly=round(mostly, 6)))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=LABEL))
    suite.add_expectation(e.ExpectColumnDistinctValuesToEqualSet(column=LABEL,
                                                                 value_set=schema.classes))
    return suite


def _pixel_suite(gx, name: str, lo: float, hi: float):
    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"{name}_pixels_suite")
    for col in ("pixel_min", "pixel_max"):
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=col, min_value=lo,
                                                              max_value=hi))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="non_finite", min_value=0,
                                                          max_value=0))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="first_bad_pixel", value_set=[""]))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="numeric_columns",
                                                        value_set=[True]))
    return suite


def _summarise(result) -> dict:
    failed = []
    for r in result.results:
        if r.success:
            continue
        kwargs = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
        if "value_set" in kwargs and len(kwargs["value_set"]) > 10:
            kwargs["value_set"] = f"<{len(kwargs['value_set'])} values>"
        failed.append({"expectation": r.expectation_config.type, "kwargs": kwargs,
                       "unexpected_count": r.result.get("unexpected_count"),
                       "examples": [str(v) for v in (r.result.get("partial_unexpected_list")
                                                     or r.result.get("observed_value") and
                                                     [r.result.get("observed_value")] or [])][:5]})
    return {"success": bool(result.success), "evaluated": len(result.results), "failed": failed}


def _checks(gx, schema: Schema, frames: dict[str, pd.DataFrame],
            min_rows_per_class: int) -> list[tuple[str, pd.DataFrame, Any]]:
    """(name, table, suite) per check: each split's rows (and per-image pixel summaries), its
    per-class counts, and the test rows' content hashes against train's (leakage)."""
    counts = {s: df[LABEL].value_counts().rename_axis(LABEL).reset_index(name="count")
              for s, df in frames.items() if LABEL in df.columns}
    present = [c for c in schema.features if all(c in df.columns for df in frames.values())]
    rules = column_rules(schema, frames)
    e = gx.expectations
    checks: list[tuple[str, pd.DataFrame, object]] = []
    for s in SPLITS:
        checks.append((s, frames[s], _suite_for(gx, s, schema, rules, schema.n_classes,
                                                len(frames[s]))))
        if schema.pixel_range is not None:
            lo, hi = schema.pixel_range
            checks.append((f"{s}_pixels", pixel_summary(frames[s], schema.features, lo, hi),
                           _pixel_suite(gx, s, lo, hi)))
        suite = gx.ExpectationSuite(name=f"{s}_class_counts_suite")
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(
            column="count", min_value=min_rows_per_class if s == "train" else 1))
        checks.append((f"{s}_class_counts", counts.get(s, pd.DataFrame({"count": []})), suite))
    train_hashes = sorted(set(row_hashes(frames["train"], present)))
    leak = gx.ExpectationSuite(name="test_vs_train_suite")
    leak.add_expectation(e.ExpectColumnValuesToNotBeInSet(column="row_hash", value_set=train_hashes))
    checks.append(("test_vs_train", pd.DataFrame({"row_hash": row_hashes(frames["test"], present)}),
                   leak))
    return checks


def _ephemeral_context(gx, docs_dir: Path):
    """A GX context in memory whose Data Docs site is built into `docs_dir`."""
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    ctx.add_data_docs_site(site_name="augflow", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    return ctx


def run_validate(min_rows_per_class: int, paths: Paths) -> dict:
    """Check the three splits against the schema, the class counts and train/test leakage;
    publish Data Docs; raise ValidationFailed (keeping the last good result) on any failure."""
    import great_expectations as gx  # ~6 s to import: only this stage pays for it
    from great_expectations.core.run_identifier import RunIdentifier

    schema = read_schema(paths.schema)
    frames = {s: read_parquet(paths.split(s)) for s in SPLITS}
    docs_tmp = Path(tempfile.mkdtemp(prefix="augflow-docs-"))
    ctx = _ephemeral_context(gx, docs_tmp)   # before any suite: GX suites need a live context
    checks = _checks(gx, schema, frames, min_rows_per_class)
    source = ctx.data_sources.add_pandas("augflow")
    definitions = []
    for name, _, suite in checks:
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
        definitions.append(ctx.validation_definitions.add(gx.ValidationDefinition(
            data=batch, suite=ctx.suites.add(suite), name=f"{name}_validation")))
    summary: dict = {"success": True, "checks": {}}
    # One run name for the whole stage, so Data Docs group this run's pages (GX shows
    # "__none__" without one). It names a folder of the docs: no spaces or colons.
    run_id = RunIdentifier(run_name=f"augflow-validate-{_stamp()}")
    for (name, df, _), vd in zip(checks, definitions):
        result = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY",
                        run_id=run_id)
        summary["checks"][name] = _summarise(result)
        summary["success"] &= bool(result.success)
    _name_data_assets(ctx, {suite.name: name for name, _, suite in checks})
    ctx.build_data_docs(site_names=["augflow"])
    # Data Docs carry run timestamps, so they are a report beside the tracked result, not a DVC
    # out. A failing run's docs go beside the last good ones, never over them.
    failed_docs = paths.data_docs.with_name("data_docs_failed")
    target = paths.data_docs if summary["success"] else failed_docs
    for old in {target, failed_docs}:
        if old.exists():
            shutil.rmtree(old)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(docs_tmp), target)
    _record_run(paths, run_id.run_name, summary)
    if not summary["success"]:
        # The last good result stays in place; the failure gets its own report.
        failed_path = paths.validation.with_name("validation_failed.json")
        write_json(failed_path, summary)
        raise ValidationFailed(format_failures(summary) + f"\n  Data Docs of this run: "
                               f"{failed_docs / 'index.html'}", file=str(failed_path),
                               rule="expectations")
    write_json(paths.validation, summary)
    return {"expectations_evaluated": sum(c["evaluated"] for c in summary["checks"].values()),
            "expectations_failed": 0}


def _record_run(paths: Paths, run_name: str, summary: dict) -> None:
    """Append this run to the validation log and rewrite the offline page listing every run.
    GX's Data Docs index draws its list of runs with scripts from a CDN: offline it lists none,
    and its pages lose their pass/fail icons. This page needs nothing but the file."""
    runs = []
    if paths.validation_runs.is_file():
        runs = [json.loads(line) for line in paths.validation_runs.read_text().splitlines()
                if line.strip()]
    runs.append({"run": run_name, "success": summary["success"],
                 "checks": {n: {"evaluated": c["evaluated"], "failed": c["failed"],
                                "success": c["success"]}
                            for n, c in summary["checks"].items()}})
    paths.validation_runs.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(paths.validation_runs,
                "".join(json.dumps(r, sort_keys=True) + "\n" for r in runs).encode())
    write_bytes(paths.validation_page, validation_page_html(runs).encode())


def validation_page_html(runs: list[dict]) -> str:
    """Every validation run, newest first: its result, then each check of the newest run with
    its failed expectations (column and examples). Plain HTML, no script, no external style."""
    esc = html.escape

    def mark(ok: bool) -> str:
        return ('<b style="color:#1a7f37">&#10003; passed</b>' if ok
                else '<b style="color:#cf222e">&#10007; failed</b>')

    latest = runs[-1]
    rows = "".join(
        f"<tr><td>{esc(n)}</td><td>{mark(c['success'])}</td><td>{c['evaluated']}</td>"
        f"<td>{len(c['failed'])}</td><td>{'<br>'.join(esc(_describe(f)) for f in c['failed'])}"
        f"</td></tr>" for n, c in latest["checks"].items())
    history = "".join(
        f"<tr><td>{esc(r['run'])}</td><td>{mark(r['success'])}</td>"
        f"<td>{sum(len(c['failed']) for c in r['checks'].values())}</td></tr>"
        for r in reversed(runs))
    failed = sum(len(c["failed"]) for c in latest["checks"].values())
    verdict = ("every expectation passed" if latest["success"] else
               f"{failed} expectation(s) failed: the pipeline stopped at validate")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>augflow validation</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}}</style></head><body>
<h1>Validation: {mark(latest['success'])}</h1>
<p>Latest run <code>{esc(latest['run'])}</code>: {verdict}. Great Expectations' own pages:
<a href="data_docs/index.html">data_docs/</a> (the last good run) and
<a href="data_docs_failed/index.html">data_docs_failed/</a> (the last failure); they load
scripts and styles from a CDN, this page does not.</p>
<h2>Checks of the latest run</h2>
<table><tr><th>check</th><th>result</th><th>expectations</th><th>failed</th>
<th>what failed</th></tr>{rows}</table>
<h2>Every run, newest first</h2>
<table><tr><th>run</th><th>result</th><th>failed expectations</th></tr>{history}</table>
</body></html>
"""


def _describe(failure: dict) -> str:
    col = failure["kwargs"].get("column", "")
    return (f"{failure['expectation']} column={col!r} unexpected={failure['unexpected_count']} "
            f"examples={failure['examples']}")


def _stamp() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def _name_data_assets(ctx, asset_of_suite: dict[str, str]) -> None:
    """An in-memory dataframe batch carries no asset name, so every Data Docs page would say
    "Data asset: None". Each check has its own suite: write the check's name into its stored
    result, which is where the page renderer looks for it."""
    store = ctx.validation_results_store
    for key in store.list_keys():
        result = store.get(key)
        asset = asset_of_suite.get(result.suite_name)
        if asset is None:
            continue
        spec = dict(result.meta.get("batch_spec") or {})
        spec["data_asset_name"] = asset
        result.meta["batch_spec"] = spec
        store.set(key, result)


def format_failures(summary: dict) -> str:
    lines = ["data validation failed; failed expectations:"]
    for name, check in summary["checks"].items():
        for f in check["failed"]:
            col = f["kwargs"].get("column", "")
            tolerance = ""
            if "mostly" in f["kwargs"]:
                tolerance = (f" (profiled from train: at most {1 - f['kwargs']['mostly']:.1%} "
                             f"of the split may fall outside; more did)")
            lines.append(f"  [{name}] {f['expectation']} column={col!r} "
                         f"unexpected={f['unexpected_count']} examples={f['examples']}{tolerance}")
    return "\n".join(lines)
