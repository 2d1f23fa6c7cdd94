"""The exceptions of the package (one mapping from the library's errors) and where the defaults
come from (the library's requests, as the command line's)."""

import inspect
import pickle

import numpy as np
import pytest

import sbipix


@pytest.fixture(scope="module")
def model():
    return sbipix.Model.load("default")


def test_a_bad_argument_is_an_invalid_argument_error(tmp_path, model):
    with pytest.raises(sbipix.InvalidArgumentError) as e:
        model.map_cube(tmp_path / "never_read.fits", redshift=2, draws=0)
    assert isinstance(e.value, sbipix.SbipixError) and isinstance(e.value, ValueError)
    assert (e.value.name, e.value.value) == ("draws", "0") and "at least 1" in e.value.reason
    assert str(e.value).startswith("draws 0: ")
    # refused by the request itself, not only by the Python wrapper (it used to accept 2)
    with pytest.raises(sbipix.InvalidArgumentError, match="reference_particles") as e:
        sbipix.validate(model, tmp_path / "v", n=10, reference=3, reference_particles=2)
    assert e.value.name == "reference_particles"
    assert not (tmp_path / "v").exists()
    with pytest.raises(sbipix.InvalidArgumentError) as e:
        sbipix.train(tmp_path / "no_set", tmp_path / "m", hidden_layers=0, progress=False)
    assert e.value.name == "hidden_layers"
    with pytest.raises(sbipix.InvalidArgumentError, match="unknown flow"):
        sbipix.train(tmp_path / "no_set", tmp_path / "m", flow="glow", progress=False)


def test_a_missing_file_is_a_file_error_and_an_oserror(tmp_path, model):
    missing = tmp_path / "missing.fits"
    with pytest.raises(sbipix.FileError) as e:
        model.map_cube(missing, redshift=2)
    assert isinstance(e.value, OSError) and isinstance(e.value, sbipix.SbipixError) and isinstance(e.value, ValueError)
    assert e.value.path == str(missing) and "no such file" in str(e.value)
    try:
        model.fit_catalog(tmp_path / "missing.csv", ppc=False)
    except OSError as x:  # what Python code catching file errors writes
        assert "missing.csv" in str(x)
    else:
        pytest.fail("no error for a missing catalogue")


def test_arrays_of_the_wrong_shape_are_a_shape_error(model):
    flux = np.full((3, 8, 8), 0.01)
    with pytest.raises(sbipix.ShapeError) as e:
        model.map(flux, flux, ["F277W", "F356W"], 2.0)
    assert e.value.what == "band names" and isinstance(e.value, sbipix.SbipixError)
    with pytest.raises(sbipix.ShapeError):
        model.map(flux, flux[:, :4], ["F277W", "F356W", "F444W"], 2.0)


def test_exceptions_survive_pickling():
    """Dask sends a worker's exception to the client pickled."""
    for e in [sbipix.SbipixError("x"), sbipix.InvalidArgumentError("y"), sbipix.FileError("z")]:
        e.path = "/p"
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and back.path == "/p"


def test_the_signatures_read_the_library_defaults():
    d = sbipix.DEFAULTS
    assert (d["map"]["draws"], d["map"]["snr_min"], d["fit"]["draws"], d["fit"]["error_floor"]) == (500, 5.0, 2000, 0.05)
    sig = lambda f: {k: p.default for k, p in inspect.signature(f).parameters.items()}  # noqa: E731
    assert sig(sbipix.Model.map_cube)["draws"] == d["map"]["draws"]
    assert sig(sbipix.Model.sample)["n"] == d["sample"]["n"] == 500
    assert sig(sbipix.Model.fit)["error_floor"] == d["fit_arrays"]["error_floor"]
    assert sig(sbipix.Model.fit_catalog)["draws"] == d["fit"]["draws"]
    assert sig(sbipix.train)["hidden_layers"] == d["train"]["hidden_layers"] == 2
    v = sig(sbipix.validate)
    assert (v["n"], v["seed"], v["reference_particles"]) == (2000, 987654321, 1000)
    assert sig(sbipix.simulate)["drop_rate"] == 0.1 and sig(sbipix.survey)["draws"] == 500


def test_a_flux_far_below_zero_is_a_warning_naming_row_and_band(tmp_path, model):
    """A source's flux cannot be 6σ negative: the row is fitted as given, the user is warned."""
    cat = tmp_path / "neg.csv"
    cat.write_text("id,redshift,flux_ujy_F444W,err_ujy_F444W,flux_ujy_F277W,err_ujy_F277W\n"
                   "a,2.0,1.0,0.1,0.5,0.05\nb,2.0,1.0,0.1,-0.3,0.05\n")
    with pytest.warns(sbipix.SbipixWarning, match=r"1 flux in 1 row more than 5σ below zero — row 2 \(line 3, id b\) F277W -6\.0σ"):
        r = model.fit_catalog(cat, draws=50, ppc=False, refine=False, out=tmp_path / "neg_fit.csv")
    assert list(r["status"]) == ["ok", "ok"]
