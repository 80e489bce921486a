"""Data: the feature schema, splits, the synthetic generator, and every on-disk reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moe_zoo.core import InputError
from moe_zoo.recsys.data import (
    GENRES,
    adult,
    clothing,
    movielens,
    read_kuairand,
    read_movielens_100k,
    synthetic_mmoe,
)
from moe_zoo.recsys.dataset import time_split
from moe_zoo.recsys.schema import FeatureSchema


def test_schema_fits_on_training_rows_and_maps_unknowns_to_zero():
    train = pd.DataFrame({"c": ["x", "y", "x", "z"], "n": [1.0, 2.0, 3.0, 4.0]})
    schema = FeatureSchema.fit(train, ["c"], ["n"], min_count=2)
    assert schema.vocabularies == (("x",),) and schema.cardinalities == (2,)
    ids, numeric = schema.encode(pd.DataFrame({"c": ["x", "y", "new"], "n": [2.5, 2.5, 5.0]}))
    assert ids[:, 0].tolist() == [1, 0, 0]
    np.testing.assert_allclose(numeric[:, 0], (np.array([2.5, 2.5, 5.0]) - 2.5) / np.std([1, 2, 3, 4]), rtol=1e-6)
    assert FeatureSchema.from_json(schema.to_json()) == schema


def test_schema_rejects_missing_columns_and_nan_numbers():
    schema = FeatureSchema.fit(pd.DataFrame({"c": ["a"], "n": [1.0]}), ["c"], ["n"])
    with pytest.raises(InputError, match="lack the feature column"):
        schema.encode(pd.DataFrame({"c": ["a"]}))
    with pytest.raises(InputError, match="NaN"):
        schema.encode(pd.DataFrame({"c": ["a"], "n": [np.nan]}))


def test_time_split_is_chronological_overall_and_per_group():
    t = np.array([5, 1, 4, 2, 3, 9, 8, 7, 6, 10])
    split = time_split(t)
    assert split.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # t <= 8 train, t = 9 valid, t = 10 test
    groups = np.array([0] * 5 + [1] * 5)
    per_user = time_split(t, groups=groups, fractions=(0.6, 0.2))
    for g in (0, 1):
        rows = groups == g
        order = np.argsort(t[rows])
        assert per_user[rows][order].tolist() == [0, 0, 0, 1, 2]


def test_synthetic_task_correlation_falls_with_p():
    corr = []
    for p in (1.0, 0.5, 0.0):
        s = synthetic_mmoe(p, n=3000)
        assert s.train.numeric.shape[1] == 100 and s.tasks.kinds == ("regression", "regression")
        corr.append(np.corrcoef(s.train.labels.T)[0, 1])
    assert corr[0] > 0.95 and corr[0] > corr[1] > corr[2]
    with pytest.raises(InputError, match="correlation"):
        synthetic_mmoe(1.5)


def test_kuairand_reader_on_a_data_folder_in_the_real_layout(kuairand_dir):
    s = read_kuairand(kuairand_dir)
    assert s.tasks.names == ("is_click", "long_view", "effective_view", "complete_view", "is_like", "is_follow",
                             "is_comment", "is_forward", "is_profile_enter")
    assert s.tasks.groups == (0, 0, 0, 0, 1, 1, 1, 1, 1)
    assert {"user_id", "video_id", "tab", "hour", "user_user_active_degree", "user_onehot_feat17",
            "video_author_id", "video_tag"} <= set(s.schema.categorical)
    numbers = {"log_duration", "user_follow_user_num", "user_fans_user_num", "user_friend_user_num",
               "user_register_days", "video_video_duration", "video_server_width", "video_server_height"}
    assert set(s.schema.numeric) == numbers                         # counts are numbers, not categories
    assert len(s.train) + len(s.valid) + len(s.test) == 600       # both standard logs, not the random one
    # the derived watch tasks follow KuaiRand's definitions, row by row
    log = pd.concat([pd.read_csv(p) for p in sorted(kuairand_dir.glob("log_standard_*.csv"))], ignore_index=True)
    log = log.sort_values("time_ms", kind="stable")
    effective = (log["play_time_ms"] >= np.minimum(log["duration_ms"], 7000)).to_numpy(float)
    complete = (log["play_time_ms"] >= log["duration_ms"]).to_numpy(float)
    labels = np.concatenate([s.train.labels, s.valid.labels, s.test.labels])
    np.testing.assert_array_equal(np.sort(labels[:, 2]), np.sort(effective))
    np.testing.assert_array_equal(np.sort(labels[:, 3]), np.sort(complete))
    # user numbers: log(1 + count), standardised with the training rows' moments
    raw = pd.read_csv(kuairand_dir / "user_features_pure.csv").set_index("user_id")["fans_user_num"]
    column = s.schema.numeric.index("user_fans_user_num")
    first = s.train.users[0]
    expected = (np.log1p(raw[first]) - s.schema.mean[column]) / s.schema.std[column]
    assert s.train.numeric[0, column] == pytest.approx(expected, rel=1e-5)
    with_stats = read_kuairand(kuairand_dir, video_statistics=True)
    assert {"stat_show_cnt", "stat_play_cnt", "stat_counts"} <= set(with_stats.schema.numeric)
    random_only = read_kuairand(kuairand_dir, tasks=("is_click", "is_like"), only_random=True)
    assert random_only.tasks.groups == (0, 1) and len(random_only.train) == 40


def test_kuairand_reader_names_missing_columns(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({"user_id": [1], "video_id": [2], "time_ms": [3]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="is_click"):
        read_kuairand(path)


def _grouplens_fixture(root):
    rng = np.random.default_rng(0)
    rows = [(u, i, int(rng.integers(1, 6)), 880_000_000 + 100 * k) for k, (u, i) in
            enumerate((u, i) for u in range(1, 6) for i in range(1, 9) if (u + i) % 3)]
    (root / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    (root / "u.user").write_text("".join(f"{u}|{20 + u}|{'MF'[u % 2]}|student|{55000 + u}\n" for u in range(1, 6)))
    flags = "|".join("1" if j == 3 else "0" for j in range(19))
    (root / "u.item").write_bytes("".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{flags}\n"
                                          for i in range(1, 11)).encode("latin-1"))
    return rows


def test_movielens_grouplens_format_and_task_construction(tmp_path):
    rows = _grouplens_fixture(tmp_path)
    ratings, users, items = read_movielens_100k(tmp_path)
    assert len(ratings) == len(rows) and list(users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert items["genre_Animation"].sum() == 10 and items["release_year"].eq(1995).all()
    s = movielens(tmp_path)
    labels = np.concatenate([s.train.labels, s.valid.labels, s.test.labels])
    assert labels.shape == (2 * len(rows), 3)
    assert labels[:, 0].mean() == pytest.approx(0.5)                 # one sampled negative per rating
    assert (labels[:, 1] <= labels[:, 0]).all() and (labels[:, 2] <= labels[:, 1]).all()  # five_star => like => click
    assert s.tasks.groups == (0, 1, 1) and len(s.schema.numeric) == 1 + len(GENRES)


def test_movielens_recbole_format(tmp_path):
    (tmp_path / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                            + "".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t{100 * (u + i)}\n"
                                                      for u in range(1, 4) for i in range(1, 5)))
    (tmp_path / "ml-100k.user").write_text("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                                           + "".join(f"{u}\t30\tF\twriter\t1000{u}\n" for u in range(1, 4)))
    (tmp_path / "ml-100k.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                           + "".join(f"{i}\tFilm\t1990\tAction Comedy\n" for i in range(1, 7)))
    ratings, _, items = read_movielens_100k(tmp_path)
    assert len(ratings) == 12 and items[["genre_Action", "genre_Comedy", "genre_Drama"]].sum().tolist() == [6, 6, 0]


def test_unknown_movielens_directory_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no MovieLens-100K files"):
        read_movielens_100k(tmp_path)


def test_builtin_movielens(real_data):
    s = movielens()
    assert len(s.train) + len(s.valid) + len(s.test) == 200_000
    assert s.schema.cardinalities[:2] == (944, 1683)  # every user and item appears in training
    train_click, train_like, train_five = s.train.labels.mean(0)
    assert train_click == pytest.approx(0.5, abs=0.01) and 0.2 < train_like < 0.35 and 0.05 < train_five < 0.15


def test_builtin_adult_and_clothing(real_data):
    a = adult()
    assert len(a.train) + len(a.valid) + len(a.test) == 48_842 and a.tasks.names == ("income_50k", "never_married")
    assert 0.2 < a.train.labels[:, 0].mean() < 0.3 and 0.3 < a.train.labels[:, 1].mean() < 0.36
    assert "relationship" not in a.schema.columns
    c = clothing(text_dims=4)
    assert len(c.train) + len(c.valid) + len(c.test) == 23_486 and c.tasks.kinds == ("regression", "binary")
    assert c.train.labels[:, 0].min() == 1 and c.train.labels[:, 0].max() == 5
