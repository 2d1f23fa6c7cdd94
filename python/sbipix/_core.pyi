# Type stubs of the compiled module (crates/sbipix-py); the public API is sbipix/__init__.py.
# Keyword arguments left out (or None) take the defaults of the library's requests (`defaults()`).
from typing import Callable, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

class SbipixError(ValueError): ...
class InvalidArgumentError(SbipixError):
    name: str
    value: str
    reason: str

class ShapeError(SbipixError):
    what: str
    expected: str
    got: str

class FileError(SbipixError, OSError):
    path: str

def version() -> str: ...
def defaults() -> str: ...
def data_path() -> str: ...
def fetch_data(*, force: bool = ...) -> List[str]: ...
def photometry(
    names: List[str],
    columns: List[npt.NDArray[np.float64]],
    *,
    sfh: Optional[str] = ...,
    filters: Optional[List[str]] = ...,
    settings: Optional[str] = ...,
) -> Tuple[
    List[str], npt.NDArray[np.float64], List[str], List[str], npt.NDArray[np.float64], npt.NDArray[np.float64], List[str]
]: ...
def simulate(
    n: int,
    out: str,
    *,
    prior: Optional[str] = ...,
    sfh: Optional[str] = ...,
    survey: Optional[str] = ...,
    seed: Optional[int] = ...,
    drop_rate: Optional[float] = ...,
    focus_snr: Optional[Tuple[float, float]] = ...,
    outside_fraction: Optional[float] = ...,
    overwrite: Optional[bool] = ...,
) -> Tuple[str, List[str]]: ...
def read_training_set(
    path: str,
) -> Tuple[
    List[str],
    List[str],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint8],
]: ...
def train(
    data: str,
    out: str,
    *,
    flow: Optional[str] = ...,
    layers: Optional[int] = ...,
    hidden: Optional[int] = ...,
    hidden_layers: Optional[int] = ...,
    bins: Optional[int] = ...,
    affine_hidden: Optional[int] = ...,
    params: Optional[List[str]] = ...,
    seed: Optional[int] = ...,
    batch_size: Optional[int] = ...,
    lr: Optional[float] = ...,
    max_epochs: Optional[int] = ...,
    schedule: Optional[str] = ...,
    patience: Optional[int] = ...,
    checkpoint: Optional[str] = ...,
    resume: Optional[bool] = ...,
    overwrite: Optional[bool] = ...,
    progress: Optional[Callable[[str], None]] = ...,
) -> str: ...
def validate(
    model: str,
    out: str,
    *,
    n: Optional[int] = ...,
    seed: Optional[int] = ...,
    draws: Optional[int] = ...,
    snr_min: Optional[float] = ...,
    overwrite: Optional[bool] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    reference: Optional[int] = ...,
    reference_particles: Optional[int] = ...,
    against: Optional[str] = ...,
    atlas_has_1pz: Optional[bool] = ...,
    like: Optional[str] = ...,
    like_unit: Optional[str] = ...,
    cases_from: Optional[str] = ...,
    like_images: Optional[List[str]] = ...,
    like_errors: Optional[List[str]] = ...,
    like_noise_from: Optional[List[str]] = ...,
    like_error_kind: Optional[str] = ...,
    like_bands: Optional[str] = ...,
) -> Tuple[str, List[str]]: ...

def calibrate(
    model: str,
    out: str,
    *,
    n: Optional[int] = ...,
    seed: Optional[int] = ...,
    draws: Optional[int] = ...,
    snr_min: Optional[float] = ...,
    overwrite: Optional[bool] = ...,
) -> Tuple[str, List[str]]: ...

class Model:
    @staticmethod
    def load(name: str) -> Model: ...
    @property
    def parameter_names(self) -> List[str]: ...
    @property
    def bands(self) -> List[str]: ...
    @property
    def max_redshift(self) -> float: ...
    @property
    def path(self) -> str: ...
    @property
    def manifest_json(self) -> str: ...

_PhotoZOut = Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], List[str]]
_MapOut = Tuple[List[str], List[npt.NDArray[np.float32]], str, List[str]]

def sample(
    model: Model,
    flux: npt.NDArray[np.float64],
    err: npt.NDArray[np.float64],
    measured: npt.NDArray[np.uint8],
    redshift: npt.NDArray[np.float64],
    *,
    n: Optional[int] = ...,
    seed: Optional[int] = ...,
    error_floor: Optional[float] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
) -> Tuple[npt.NDArray[np.float32], List[str]]: ...
def fit_catalog(
    model: Model,
    path: str,
    *,
    flux_columns: Optional[str] = ...,
    err_columns: Optional[str] = ...,
    redshift_column: Optional[str] = ...,
    id_column: Optional[str] = ...,
    unit: Optional[str] = ...,
    draws: Optional[int] = ...,
    seed: Optional[int] = ...,
    error_floor: Optional[float] = ...,
    ppc: Optional[bool] = ...,
    out: Optional[str] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    free_logu: Optional[bool] = ...,
    photo_z: Optional[bool] = ...,
    photo_z_settings: Optional[str] = ...,
) -> Tuple[
    List[str],
    npt.NDArray[np.float64],
    List[int],
    List[str],
    List[str],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    Optional[npt.NDArray[np.float64]],
    Optional[_PhotoZOut],
    List[str],
]: ...
def photo_z(
    model: Model,
    flux: npt.NDArray[np.float64],
    err: npt.NDArray[np.float64],
    measured: npt.NDArray[np.uint8],
    *,
    sys_err: Optional[float] = ...,
    settings: Optional[str] = ...,
) -> Tuple[_PhotoZOut, List[str]]: ...
def map_cube(
    model: Model,
    path: str,
    *,
    redshift: Optional[float] = ...,
    snr_min: Optional[float] = ...,
    draws: Optional[int] = ...,
    seed: Optional[int] = ...,
    ppc: Optional[bool] = ...,
    unit: Optional[str] = ...,
    out: Optional[str] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    seg: Optional[str] = ...,
    seg_id: Optional[float] = ...,
    photo_z: Optional[bool] = ...,
    free_logu: Optional[bool] = ...,
) -> _MapOut: ...
def map_arrays(
    model: Model,
    flux: npt.NDArray[np.float64],
    err: npt.NDArray[np.float64],
    bands: List[str],
    redshift: float,
    *,
    snr_min: Optional[float] = ...,
    draws: Optional[int] = ...,
    seed: Optional[int] = ...,
    ppc: Optional[bool] = ...,
    out: Optional[str] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    free_logu: Optional[bool] = ...,
) -> _MapOut: ...
def survey(
    model: Model,
    manifest: str,
    out: str,
    *,
    draws: Optional[int] = ...,
    snr_min: Optional[float] = ...,
    seed: Optional[int] = ...,
    ppc: Optional[bool] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    photo_z: Optional[bool] = ...,
) -> Tuple[List[Tuple[str, str]], List[str]]: ...
def survey_galaxy(
    model: Model,
    manifest: str,
    index: int,
    out: str,
    *,
    draws: Optional[int] = ...,
    snr_min: Optional[float] = ...,
    seed: Optional[int] = ...,
    ppc: Optional[bool] = ...,
    refine: Optional[bool] = ...,
    sys_err: Optional[float] = ...,
    photo_z: Optional[bool] = ...,
) -> Tuple[str, str, List[str]]: ...
def survey_manifest(path: str) -> List[Tuple[str, Optional[str]]]: ...
def survey_collect(manifest: str, out: str) -> List[Tuple[str, str]]: ...
