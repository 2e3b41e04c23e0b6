"""Differential test against the official CULane evaluator, built from ../shared/reference/culane-official
(skipped where it cannot be built: no sources, no g++ or no OpenCV development files). It writes random
CULane-layout trees (selfocus_ext/testing/culane_official/cases.py) and requires zero differences in per-image and
per-list counts, and in what `python -m selfocus_ext.evaluate culane` prints. SELFOCUS_CULANE_ORACLE_IMAGES
sets the number of images (default 2000; python/culane_fidelity.py runs the large version)."""
import importlib.util
import os

import pytest

from selfocus_ext.testing.culane_official import oracle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fidelity():
    try:
        oracle.build()
    except oracle.OracleUnavailable as exc:
        pytest.skip(f"official CULane evaluator not available: {exc}")
    spec = importlib.util.spec_from_file_location("culane_fidelity", os.path.join(REPO, "python", "culane_fidelity.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zero_differences_with_the_official_tool(fidelity, tmp_path, capsys):
    images = int(os.environ.get("SELFOCUS_CULANE_ORACLE_IMAGES", "2000"))
    rc = fidelity.main(["--images", str(images), "--seed", "7", "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "images whose counts differ: 0; lists: 0; evaluate-command scenarios: 0" in out
