"""``nlp.threads.single_blas_thread``: one BLAS thread inside, the count restored after, nesting set once, and the
public solves run under it."""

from __future__ import annotations

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.nlp import threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> list[int]:
    """The thread counts of the BLAS libraries that numpy's and scipy's wheels bundle (read afresh).  Other BLAS
    libraries a test run may load (built for one thread, say) are not what lexmargin's linear algebra calls; other
    installations than the wheels' give an empty list, and the tests skip."""
    import os

    import numpy.linalg  # noqa: F401
    import scipy.linalg  # noqa: F401

    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"
            and os.path.basename(os.path.dirname(info["filepath"])) in ("numpy.libs", "scipy.libs")]


@pytest.fixture
def two_threads():
    """BLAS at two threads for the test (the count before restored after)."""
    if not blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if set(blas_threads()) != {2}:
            pytest.skip(f"BLAS does not run two threads here: {blas_threads()}")
        yield


def test_one_thread_inside_and_the_count_restored_after(two_threads):
    before = blas_threads()
    with threads.single_blas_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_nested_blocks_keep_one_thread_until_the_outermost_ends(two_threads):
    before = blas_threads()
    with threads.single_blas_thread():
        with threads.single_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}            # the inner block restored nothing
    assert blas_threads() == before


def test_the_count_is_restored_when_the_block_raises(two_threads):
    before = blas_threads()
    with pytest.raises(RuntimeError), threads.single_blas_thread():
        raise RuntimeError("inside")
    assert blas_threads() == before
    with threads.single_blas_thread():               # and the next block still sets it
        assert set(blas_threads()) == {1}


def test_without_threadpoolctl_nothing_changes(monkeypatch, two_threads):
    before = blas_threads()
    monkeypatch.setattr(threads, "_CONTROLLER", [None])
    with threads.single_blas_thread():
        assert blas_threads() == before


def separable(n: int, d: int, seed: int = 0) -> lm.Dataset:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return lm.Dataset(X + 0.3 * y[:, None] * w / np.linalg.norm(w), y)


@pytest.mark.parametrize("solve", ["max_margin", "max_margin_ipopt", "svm_with_bias"])
def test_solves_and_their_certificates_run_on_one_thread(monkeypatch, two_threads, solve):
    """Every certificate of a solve is computed under the limit: certify sees one BLAS thread each time (every
    module that imported ``certify`` gets the spy)."""
    import sys

    certify_module = sys.modules["lexmargin.nlp.certify"]
    original, seen = certify_module.certify, []

    def spy(*args, **kwargs):
        seen.append(tuple(blas_threads()))
        return original(*args, **kwargs)
    for name, module in list(sys.modules.items()):
        if name.startswith("lexmargin") and getattr(module, "certify", None) is original:
            monkeypatch.setattr(module, "certify", spy)
    data = separable(30, 3)
    if solve == "svm_with_bias":
        lm.svm_with_bias(data)
    else:
        lm.max_margin(lm.load_model("linear", input_dim=3), data, route="ipopt" if solve.endswith("ipopt") else "auto")
    assert seen and all(set(counts) == {1} for counts in seen)
    assert set(blas_threads()) == {2}
