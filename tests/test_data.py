"""Dataset validation, loading and saving."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexmargin import DataError, Dataset, as_dataset

X_OK = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0]])
Y_OK = np.array([1.0, -1.0, 1.0])


def test_valid_dataset_is_read_only_float():
    d = Dataset(X_OK.astype(int), [1, -1, 1])
    assert d.X.dtype == float and d.y.dtype == float
    assert (d.n_samples, d.n_features) == (3, 2)
    with pytest.raises(ValueError):
        d.X[0, 0] = 5.0


@pytest.mark.parametrize("bad, row", [(np.nan, 1), (np.inf, 2), (-np.inf, 0)])
def test_non_finite_features_name_the_row(bad, row):
    X = X_OK.copy()
    X[row, 1] = bad
    with pytest.raises(DataError, match=rf"non-finite.*\[{row}\]"):
        Dataset(X, Y_OK)


def test_one_dimensional_X_suggests_reshape():
    with pytest.raises(DataError, match="reshape"):
        Dataset(np.array([1.0, 2.0, 3.0]), Y_OK)


@pytest.mark.parametrize("X", [np.zeros((0, 2)), np.zeros((3, 0)), np.zeros((2, 2, 2))])
def test_empty_or_3d_X(X):
    with pytest.raises(DataError, match="2-D"):
        Dataset(X, np.ones(X.shape[0]))


def test_non_numeric_X():
    with pytest.raises(DataError, match="numeric"):
        Dataset([["a", "b"]], [1])


@pytest.mark.parametrize("y", [[1.0, -1.0], [1.0, -1.0, 1.0, 1.0], [[1.0, -1.0, 1.0]]])
def test_wrong_label_shape(y):
    with pytest.raises(DataError, match="one label per row"):
        Dataset(X_OK, y)


def test_zero_one_labels_suggest_conversion():
    with pytest.raises(DataError, match=r"2\*y - 1"):
        Dataset(X_OK, [1, 0, 1])


def test_non_finite_labels():
    with pytest.raises(DataError, match="non-finite"):
        Dataset(X_OK, [1.0, np.nan, -1.0])


def test_conflicting_duplicates_name_both_samples():
    X = np.array([[0.0, 1.0], [2.0, 2.0], [0.0, 1.0]])
    with pytest.raises(DataError, match="samples 0 and 2 are identical"):
        Dataset(X, [1.0, -1.0, -1.0])


def test_consistent_duplicates_are_allowed():
    X = np.array([[0.0, 1.0], [2.0, 2.0], [0.0, 1.0]])
    assert Dataset(X, [1.0, -1.0, 1.0]).n_samples == 3


def test_subset_and_to_dict():
    d = Dataset(X_OK, Y_OK)
    sub = d.subset([0, 2])
    np.testing.assert_array_equal(sub.X, X_OK[[0, 2]])
    assert d.to_dict() == {"X": X_OK.tolist(), "y": Y_OK.tolist()}


def test_as_dataset():
    d = Dataset(X_OK, Y_OK)
    assert as_dataset(d) is d
    np.testing.assert_array_equal(as_dataset(X_OK, Y_OK).y, Y_OK)
    with pytest.raises(DataError, match="either"):
        as_dataset(d, Y_OK)
    with pytest.raises(DataError, match="required"):
        as_dataset(X_OK)


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_save_load_round_trip_is_exact(tmp_path, suffix):
    rng = np.random.default_rng(0)
    d = Dataset(rng.standard_normal((5, 3)), [1, -1, 1, 1, -1])
    path = tmp_path / f"data{suffix}"
    d.save(path)
    assert path.exists()
    back = Dataset.load(path)
    np.testing.assert_array_equal(back.X, d.X)
    np.testing.assert_array_equal(back.y, d.y)


def test_load_csv_written_by_hand(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text("1.5,2,1\n-1,0,-1\n")
    d = Dataset.load(path)
    np.testing.assert_array_equal(d.X, [[1.5, 2.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(d.y, [1.0, -1.0])


def test_load_csv_with_bad_labels_is_validated(tmp_path):
    path = tmp_path / "labels01.csv"
    path.write_text("1,2,1\n3,4,0\n")
    with pytest.raises(DataError, match="-1 or \\+1"):
        Dataset.load(path)


def test_load_csv_with_header_is_a_data_error(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,label\n1,2,1\n")
    with pytest.raises(DataError, match="numeric table"):
        Dataset.load(path)


def test_load_csv_with_one_column(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("1\n-1\n")
    with pytest.raises(DataError, match="feature column"):
        Dataset.load(path)


def test_load_npz_missing_labels(tmp_path):
    path = tmp_path / "noy.npz"
    np.savez(path, X=X_OK)
    with pytest.raises(DataError, match=r"lacks arrays \['y'\]"):
        Dataset.load(path)


def test_load_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="not found"):
        Dataset.load(tmp_path / "nothing.npz")
    odd = tmp_path / "data.json"
    odd.write_text("{}")
    with pytest.raises(DataError, match="unsupported"):
        Dataset.load(odd)
    with pytest.raises(DataError, match="unsupported"):
        Dataset(X_OK, Y_OK).save(tmp_path / "data.json")


def test_complex_values_are_rejected_not_truncated():
    with pytest.raises(DataError, match="complex"):
        Dataset(np.array([[1 + 2j, 0.0], [0.0, 1.0]]), [1, -1])
    with pytest.raises(DataError, match="complex"):
        Dataset(X_OK, np.array([1, -1, 1], dtype=complex))


def test_conflict_between_signed_zeros_is_found():
    # -0.0 == 0.0: the rows are identical although their bytes differ
    X = np.array([[0.0, 1.0], [2.0, 2.0], [-0.0, 1.0]])
    with pytest.raises(DataError, match="samples 0 and 2 are identical"):
        Dataset(X, [1.0, -1.0, -1.0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(0, 2 ** 32 - 1))
def test_duplicate_check_agrees_with_pairwise_comparison(n, d, seed):
    # few distinct values (signed zeros among them): duplicates, with equal or opposite labels, are common
    rng = np.random.default_rng(seed)
    X = rng.choice(np.array([-0.0, 0.0, 1.0, -2.5]), size=(n, d))
    y = rng.choice([-1.0, 1.0], size=n)
    conflict = any(np.array_equal(X[i], X[j]) and y[i] != y[j] for i in range(n) for j in range(i + 1, n))
    if conflict:
        with pytest.raises(DataError, match="identical but have opposite labels") as error:
            Dataset(X, y)
        a, b = map(int, re.search(r"samples (\d+) and (\d+)", str(error.value)).groups())
        assert a < b and np.array_equal(X[a], X[b]) and y[a] != y[b]
    else:
        assert Dataset(X, y).n_samples == n
