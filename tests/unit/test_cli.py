"""augflow.cli: bad command-line values fail with one line before any work starts."""

from __future__ import annotations

import shutil

import pytest

from augflow.cli import main
from conftest import REPO


@pytest.mark.parametrize("args, needle", [
    (["--draws", "0"], "--draws: 0: nothing would be measured [rule: >= 1]"),
    (["--seeds", "-1"], "--seeds: -1: nothing would be measured [rule: >= 1]"),
    (["--levels", "5,x"], "--levels: '5,x' is not a comma-separated list"),
    (["--levels", "0,10"], "--levels: labels per class must be at least 1"),
    (["--classifiers", "logreg,nope"], "nope"),
    (["--arms", "real,smote"], "--arms must include real and augmented"),
])
def test_lowdata_refuses_bad_arguments_in_one_line(tmp_path, capsys, args, needle):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    rc = main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path), "lowdata", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists()      # nothing was started


def test_lowdata_scores_the_cnn_by_default_on_images_only(tmp_path):
    from augflow.config import config_from_dict
    from augflow.lowdata import default_lowdata_classifiers

    (tmp_path / "data" / "raw").mkdir(parents=True)
    digits = config_from_dict({"data": {"source": "digits"}})
    assert default_lowdata_classifiers(digits, tmp_path) == ["logreg", "svm_rbf",
                                                             "random_forest", "cnn"]
    iris = config_from_dict({"data": {"source": "iris"}})
    assert default_lowdata_classifiers(iris, tmp_path) == ["logreg", "svm_rbf", "random_forest"]
