"""Measured TCSPC histogram files: a small HDF5 / NumPy ``.npz`` layout, read and written safely.

Layout (the same names in both containers; HDF5 datasets at the root, ``.npz`` arrays)::

    histograms   [N, T] or [T]   photon counts per time bin (non-negative, finite)
    time_ps      [T]             bin centres in picoseconds, uniformly spaced
    irf          [T] or [N, T]   instrument response on the same bins, one for all histograms or one
                                 each (normalised on read); its peak sets the time origin
    depth_mm, lifetime_ns, mu_a_per_mm, mu_sp_per_mm, photons, background   [N]   optional truth

HDF5 files also carry the root attribute ``format = "moe-zoo/flidar-tcspc"``. ``.npz`` files are
read with ``allow_pickle=False``: a file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from moe_zoo.core import InputError
from moe_zoo.flidar.simulator import PARAMETERS, TCSPCData

FORMAT = "moe-zoo/flidar-tcspc"
OPTIONAL = (*PARAMETERS, "photons", "background")
SUFFIXES = (".npz", ".h5", ".hdf5")


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        except (OSError, ValueError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npz archive ({err})") from None
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            fmt = handle.attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode()
            if fmt is not None and fmt != FORMAT:
                raise InputError(f"{path}: format attribute is {fmt!r}, expected {FORMAT!r}")
            return {k: handle[k][()] for k in handle if isinstance(handle[k], h5py.Dataset)}
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 file ({err})") from None


def _as_float(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    try:
        value = np.asarray(arrays[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {key!r} is not numeric") from None
    if not np.all(np.isfinite(value)):
        raise InputError(f"{path}: {key!r} contains NaN or infinite values")
    return value


def read_tcspc(path: str | Path) -> TCSPCData:
    """Read a TCSPC file (``.npz``, ``.h5`` or ``.hdf5``) into :class:`TCSPCData`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"TCSPC file not found: {path}")
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: expected one of {SUFFIXES}, got {path.suffix!r}")
    arrays = _load_arrays(path)
    missing = [k for k in ("histograms", "time_ps", "irf") if k not in arrays]
    if missing:
        raise InputError(f"{path}: missing {missing}; found {sorted(arrays)}")
    histograms = _as_float(arrays, "histograms", path)
    histograms = histograms[None] if histograms.ndim == 1 else histograms
    time_ps, irf = _as_float(arrays, "time_ps", path), _as_float(arrays, "irf", path)
    if histograms.ndim != 2 or histograms.shape[0] == 0:
        raise InputError(f"{path}: histograms must be [N, T] with N >= 1, got shape {histograms.shape}")
    bins = histograms.shape[1]
    if time_ps.shape != (bins,) or irf.shape not in ((bins,), (histograms.shape[0], bins)):
        raise InputError(f"{path}: time_ps must have shape ({bins},) and irf ({bins},) or ({histograms.shape[0]}, {bins}), "
                         f"got {time_ps.shape} and {irf.shape}")
    if (histograms < 0).any() or (irf < 0).any() or (irf.sum(-1) <= 0).any():
        raise InputError(f"{path}: counts and IRF must be non-negative and the IRF non-zero")
    steps = np.diff(time_ps)
    if bins < 2 or steps.min() <= 0 or np.ptp(steps) > 1e-6 * steps.mean():
        raise InputError(f"{path}: time_ps must be uniformly increasing bin centres")
    params = {}
    for key in OPTIONAL:
        if key in arrays:
            value = _as_float(arrays, key, path).reshape(-1)
            if value.shape[0] != histograms.shape[0]:
                raise InputError(f"{path}: {key!r} has {value.shape[0]} values for {histograms.shape[0]} histograms")
            params[key] = torch.from_numpy(value).float()
    return TCSPCData(torch.from_numpy(histograms).float(), float(steps.mean()),
                     torch.from_numpy(irf / irf.sum(-1, keepdims=True)).float(), params)


def write_tcspc(path: str | Path, data: TCSPCData) -> Path:
    """Write ``data`` in the layout above (atomically: temp file, then rename)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: expected one of {SUFFIXES}, got {path.suffix!r}")
    arrays = {"histograms": data.histograms.numpy(), "time_ps": data.time_ps.numpy(), "irf": data.irf.numpy(),
              **{k: v.numpy() for k, v in data.params.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        if path.suffix == ".npz":
            np.savez_compressed(tmp, **arrays)
        else:
            import h5py

            with h5py.File(tmp, "w") as handle:
                handle.attrs["format"] = FORMAT
                for key, value in arrays.items():
                    handle.create_dataset(key, data=value, compression="gzip")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

