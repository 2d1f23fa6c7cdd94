# Type stubs of the compiled module (crates/sbipix-py); the public API is sbipix/__init__.py.
from typing import Callable, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

class SbipixError(ValueError): ...

def version() -> str: ...
def data_path() -> str: ...
def fetch_data(force: bool) -> List[str]: ...
def photometry(
    names: List[str], columns: List[npt.NDArray[np.float64]], sfh: str, filters: Optional[List[str]] = ...
) -> Tuple[
    List[str], npt.NDArray[np.float64], List[str], List[str], npt.NDArray[np.float64], npt.NDArray[np.float64], List[str]
]: ...
def simulate(
    n: int, out: str, prior: Optional[str], sfh: str, survey: str, seed: int, drop_rate: float, overwrite: bool
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
    flow: str,
    layers: int,
    hidden: int,
    hidden_layers: int,
    bins: int,
    seed: int,
    batch_size: int,
    lr: Optional[float],
    max_epochs: int,
    patience: int,
    overwrite: bool,
    progress: Optional[Callable[[str], None]] = ...,
    params: Optional[List[str]] = ...,
) -> str: ...
def validate(
    model: str,
    out: str,
    n: int,
    seed: int,
    draws: int,
    snr_min: float,
    overwrite: bool,
    reference: int = ...,
    reference_particles: int = ...,
    refine: Optional[float] = ...,
) -> Tuple[str, List[str]]: ...

def survey_manifest(path: str) -> List[Tuple[str, Optional[str]]]: ...
def survey_collect(manifest: str, out: str) -> List[Tuple[str, str]]: ...

_MapOut = Tuple[List[str], List[npt.NDArray[np.float32]], str, List[str]]

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
    def sample(
        self,
        flux: npt.NDArray[np.float64],
        err_: npt.NDArray[np.float64],
        measured: npt.NDArray[np.uint8],
        redshift: npt.NDArray[np.float64],
        n: int,
        seed: int,
        integrated_error_floor: Optional[float] = ...,
        refine: Optional[float] = ...,
    ) -> Tuple[npt.NDArray[np.float32], List[str]]: ...
    def fit_catalog(
        self,
        path: str,
        flux_columns: str,
        err_columns: str,
        redshift_column: str,
        id_column: str,
        unit: Optional[str],
        draws: int,
        seed: int,
        error_floor: float,
        ppc: bool,
        out: Optional[str],
        refine: Optional[float] = ...,
    ) -> Tuple[
        List[str],
        npt.NDArray[np.float64],
        List[int],
        List[str],
        List[str],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        Optional[npt.NDArray[np.float64]],
        List[str],
    ]: ...
    def survey_galaxy(
        self, manifest: str, index: int, out: str, draws: int, snr_min: float, seed: int, ppc: bool
    ) -> Tuple[str, str, List[str]]: ...
    def survey(
        self, manifest: str, out: str, draws: int, snr_min: float, seed: int, ppc: bool
    ) -> Tuple[List[Tuple[str, str]], List[str]]: ...
    def map_cube(
        self,
        path: str,
        redshift: Optional[float],
        snr_min: float,
        draws: int,
        seed: int,
        ppc: bool,
        unit: Optional[str],
        out: Optional[str],
        refine: Optional[float] = ...,
    ) -> _MapOut: ...
    def map_arrays(
        self,
        flux: npt.NDArray[np.float64],
        err_: npt.NDArray[np.float64],
        bands: List[str],
        redshift: float,
        snr_min: float,
        draws: int,
        seed: int,
        ppc: bool,
        out: Optional[str],
        refine: Optional[float] = ...,
    ) -> _MapOut: ...
