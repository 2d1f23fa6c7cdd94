"""Tests of the Python package: each verb, its agreement with the command line, exact answers
where one exists (flux ∝ mass, noise pulls, coverage of simulated truths) and bad input."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import sbipix

ROOT = Path(__file__).resolve().parents[2]

def _shared():
    """The project's shared reference data, as the Rust tests find it."""
    for c in [os.environ.get("SBIPIX_SHARED"), ROOT.parent / "shared", "/work/shared"]:
        if c and Path(c).is_dir():
            return Path(c)
    return Path("/nonexistent")


JADES = _shared() / "real_data" / "jades_gsz14_pixels" / "cube_19band.fits"

COVERAGE_CONFIDENCE = 0.999


def binomial_interval(n, p, confidence=COVERAGE_CONFIDENCE):
    """The central `confidence` interval [lo, hi] of X ~ Binomial(n, p), exact (scipy's
    `binom.interval` convention: lo, hi = the smallest k with P(X ≤ k) ≥ α/2 and ≥ 1 − α/2), the
    same as sbipix-diagnostics' `binomial_interval`."""
    tail = (1.0 - confidence) / 2.0
    cdf, lo, hi = 0.0, None, None
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1.0 - p) ** (n - k)
        if lo is None and cdf >= tail * (1 - 1e-12):
            lo = k
        if hi is None and cdf >= (1.0 - tail) * (1 - 1e-12):
            hi = k
    return lo, hi


def assert_coverage(what, inside, n, level):
    """`inside` of `n` independent truths in central `level` intervals: a count calibrated
    intervals give with probability ≥ COVERAGE_CONFIDENCE."""
    lo, hi = binomial_interval(n, level)
    assert lo <= inside <= hi, (
        f"{what}: {inside} of {n} truths inside the {level:.0%} intervals; calibrated intervals give {lo}–{hi} "
        f"with {COVERAGE_CONFIDENCE:.1%} probability"
    )


def test_binomial_interval_equals_scipy():
    # scipy 1.17.1: scipy.stats.binom.interval(confidence, n, p)
    assert binomial_interval(100, 0.6827, 0.999) == (52, 83)
    assert binomial_interval(400, 0.9545, 0.999) == (367, 394)
    assert binomial_interval(40, 0.95, 0.99) == (34, 40)
    assert binomial_interval(10, 0.3, 0.9) == (1, 5)


def cli():
    """The command-line binary of the same checkout (built by `cargo test --release`)."""
    exe = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "sbipix"
    if not exe.is_file():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sbipix-cli"], cwd=ROOT, check=True)
    return str(exe)


@pytest.fixture(scope="session")
def model():
    return sbipix.Model.load("default")


@pytest.fixture(scope="session")
def small_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "ts"
    return sbipix.simulate(3000, d, seed=7)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """Pixels from the default model's own prior and noise family (a mass per kpc², any depth):
    what its coverage is calibrated on."""
    d = tmp_path_factory.mktemp("sim") / "ts_default"
    return sbipix.simulate(3000, d, seed=7, sfh="physical", survey="jades_any_depth")


# --- photometry -------------------------------------------------------------------------------


def test_photometry_fills_defaults_and_scales_with_mass():
    p = sbipix.photometry({"redshift": [1.0, 2.5], "log_mass_formed": 10.0, "age_gyr": [1.0, 0.8], "tau_gyr": 0.5})
    assert p["logzsol"].tolist() == [0.0, 0.0] and p["av_mag"].tolist() == [0.0, 0.0]
    assert p["logu"].tolist() == [-2.0, -2.0] and p["eta"].tolist() == [1.0, 1.0]
    bands = [k for k in p if k.startswith("flux_ujy_")]
    assert len(bands) == 19 and bands[0] == "flux_ujy_F090W"
    q = sbipix.photometry({"redshift": [1.0, 2.5], "log_mass_formed": 11.0, "age_gyr": [1.0, 0.8], "tau_gyr": 0.5})
    # exact: at fixed shape, dust and metallicity every flux scales with the mass formed
    for b in bands:
        np.testing.assert_allclose(q[b], 10.0 * p[b], rtol=1e-12)
    np.testing.assert_allclose(q["log_mstar"] - p["log_mstar"], 1.0, atol=1e-12)
    assert np.all(p["log_mstar"] < 10.0)  # living mass below formed mass


def test_photometry_matches_command_line(tmp_path):
    params = {"redshift": [0.5, 3.0, 6.0], "log_mass_formed": [9.0, 10.0, 8.5], "age_gyr": [2.0, 1.0, 0.3], "tau_gyr": [1.0, 0.3, 0.1], "av_mag": [0.0, 1.0, 0.3], "logzsol": [-0.5, 0.0, -1.0]}
    inp = tmp_path / "in.csv"
    with open(inp, "w") as f:
        f.write(",".join(params) + "\n")
        for i in range(3):
            f.write(",".join(str(params[k][i]) for k in params) + "\n")
    subprocess.run([cli(), "photometry", "--params", str(inp), "--out", str(tmp_path / "out.csv")], check=True, capture_output=True)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = np.array([[float(x) for x in l.split(",")] for l in lines[1:]])
    p = sbipix.photometry(params)
    for k, name in enumerate(header):
        np.testing.assert_allclose(p[name], rows[:, k], rtol=1e-9, err_msg=name)


def test_photometry_bad_input():
    with pytest.raises(sbipix.SbipixError, match="missing required column `tau_gyr`"):
        sbipix.photometry({"redshift": 1.0, "log_mass_formed": 10.0, "age_gyr": 1.0})
    with pytest.raises(sbipix.SbipixError, match="unknown column `colour`"):
        sbipix.photometry({"redshift": 1.0, "log_mass_formed": 10.0, "age_gyr": 1.0, "tau_gyr": 1.0, "colour": 1.0})
    with pytest.raises(sbipix.SbipixError, match=r"`log_mass_formed`, index 1"):
        sbipix.photometry({"redshift": [1.0, 1.0], "log_mass_formed": [10.0, np.nan], "age_gyr": 1.0, "tau_gyr": 1.0})
    with pytest.raises(sbipix.SbipixError, match="one length"):
        sbipix.photometry({"redshift": [1.0, 2.0, 3.0], "log_mass_formed": [10.0, 9.0], "age_gyr": 1.0, "tau_gyr": 1.0})
    with pytest.raises(sbipix.SbipixError, match="unknown sfh"):
        sbipix.photometry({"redshift": 1.0, "log_mass_formed": 10.0, "age_gyr": 1.0}, sfh="lognormal")
    # an onset before the Big Bang is the forward model's error, named with its row
    with pytest.raises(sbipix.SbipixError, match="row 1"):
        sbipix.photometry({"redshift": 6.0, "log_mass_formed": 10.0, "age_gyr": 5.0, "tau_gyr": 1.0})



def test_photometry_settings_reproduce_bagpipes():
    """bagpipes 1.3.6's own photometry of 60 galaxies (crates/sbipix/tests/data, made by
    scripts/bagpipes_reference.py with the SBIPIX curves): with its conventions as ``settings``
    the median |Δm| is ≈ 0.0008 mag, with the defaults ≈ 0.003–0.004 (tests/cli.rs holds the same
    through the command line)."""
    table = ROOT / "crates" / "sbipix" / "tests" / "data" / "bagpipes_reference_full.csv"
    rows = list(csv.DictReader(l for l in table.read_text().splitlines() if not l.startswith("#")))[:60]
    names = ["redshift", "log_mass_formed", "age_gyr", "tau_gyr", "logzsol", "av_mag", "logu"]
    params = {n: np.array([float(r[n]) for r in rows]) for n in names}
    flist = _shared() / "filters" / "filters_jades_no_wfc.dat"
    curves = [flist.parent / l.strip() for l in flist.read_text().splitlines() if l.strip() and not l.startswith("#")]
    conventions = {"line_placement": "nearest_pixel", "filter_sampling": "model_grid", "sfh_binning": "bagpipes_grid", "max_redshift": 10}

    def median_dm(settings):
        p = sbipix.photometry(params, filters=curves, settings=settings)
        bands = [k for k in p if k.startswith("flux_ujy_")]
        theirs = np.array([[float(r[b]) for b in bands] for r in rows])
        ours = np.stack([p[b] for b in bands], axis=1)
        keep = theirs > 1e-6 * theirs.max(axis=1, keepdims=True)
        return float(np.median(np.abs(2.5 * np.log10(ours[keep] / theirs[keep]))))

    assert median_dm(conventions) <= 0.0012
    assert median_dm(None) >= 0.002
    # one setting alone moves the photometry too: the lines at bagpipes' pixels on its grid
    assert median_dm({"line_placement": "nearest_pixel", "max_redshift": 10}) < median_dm(None)
    with pytest.raises(sbipix.InvalidArgumentError, match="filter_smapling.*filter_sampling"):
        sbipix.photometry(params, settings={"filter_smapling": "model_grid"})
    with pytest.raises(sbipix.InvalidArgumentError, match="sfh"):
        sbipix.photometry(params, settings={"sfh": "constant"})
    with pytest.raises(sbipix.InvalidArgumentError, match="settings"):
        sbipix.photometry(params, settings={"sfh_binning": "weekly"})


# --- simulate / train / validate ---------------------------------------------------------------


def test_simulate_noise_pulls_are_unit_normal(small_set):
    s = small_set
    assert s["theta"].shape == (3000, len(s["parameter_names"])) and s["flux_obs"].shape == (3000, 19)
    obs = s["observed"]
    assert 0.8 < obs.mean() < 0.95  # drop_rate 0.1
    pull = ((s["flux_obs"] - s["flux_true"]) / s["sigma"])[obs]
    # exact answer: the survey noise is Gaussian with the recorded σ
    assert abs(pull.mean()) < 0.02 and abs(pull.std() - 1.0) < 0.02
    assert np.all(np.isnan(s["flux_obs"][~obs]))
    z = s["redshift"]
    assert z.min() >= 0.0 and z.max() <= 7.5


def test_simulate_bad_input(tmp_path, small_set):
    with pytest.raises(sbipix.SbipixError, match="already exists"):
        sbipix.simulate(10, small_set["path"])
    with pytest.raises(sbipix.SbipixError, match="drop_rate"):
        sbipix.simulate(10, tmp_path / "x", drop_rate=1.5)
    with pytest.raises(sbipix.SbipixError):
        sbipix.simulate(10, tmp_path / "x", survey="no-such-survey")
    assert not (tmp_path / "x").exists()


def test_simulate_focus_snr(tmp_path):
    """Every simulation inside the window is kept (exact: the unfocused set of as many draws, same
    seed, has as many inside), the manifest records the window; bad windows are refused."""
    f = sbipix.simulate(400, tmp_path / "f", seed=5, sfh="physical", survey="jades_any_depth", focus_snr=(3, 100))
    rec = json.load(open(tmp_path / "f" / "manifest.json"))["snr_focus"]
    assert (rec["snr_min"], rec["snr_max"], rec["outside_fraction"]) == (3.0, 100.0, 0.2) and rec["n_drawn"] > 400
    full = sbipix.simulate(rec["n_drawn"], tmp_path / "u", seed=5, sfh="physical", survey="jades_any_depth")
    bands = full["bands"]
    idx = [bands.index(b) for b in ("F277W", "F356W", "F444W")]

    def snr(s):
        r = np.where(s["observed"][:, idx], s["flux_obs"][:, idx] / s["sigma"][:, idx], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(r, axis=1)

    inside = lambda x: int(np.sum((x >= 3) & (x <= 100)))
    assert f["theta"].shape[0] == 400 and inside(snr(f)) == inside(snr(full))
    with pytest.raises(sbipix.SbipixError, match="focus_snr"):
        sbipix.simulate(10, tmp_path / "x", focus_snr=(100, 3))
    with pytest.raises(sbipix.SbipixError, match="outside_fraction"):
        sbipix.simulate(10, tmp_path / "x", focus_snr=(3, 100), outside_fraction=0.0)
    with pytest.raises(ValueError, match="focus_snr"):
        sbipix.simulate(10, tmp_path / "x", outside_fraction=0.5)
    assert not (tmp_path / "x").exists()


def test_merge_training_sets(tmp_path, small_set):
    """The rows of both sets in order (exact); a set with another prior is refused, nothing written."""
    other = sbipix.simulate(200, tmp_path / "b", seed=8)
    m = sbipix.merge_training_sets([small_set["path"], other["path"]], tmp_path / "m")
    assert np.array_equal(m["theta"], np.concatenate([small_set["theta"], other["theta"]]))
    assert np.array_equal(m["observed"], np.concatenate([small_set["observed"], other["observed"]]))
    phys = sbipix.simulate(50, tmp_path / "p", seed=9, sfh="physical")
    with pytest.raises(sbipix.SbipixError, match="differs"):
        sbipix.merge_training_sets([small_set["path"], phys["path"]], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_train_and_validate_roundtrip(tmp_path, small_set):
    epochs = []
    m = sbipix.train(small_set["path"], tmp_path / "m", layers=2, hidden=32, hidden_layers=1, max_epochs=2, progress=epochs.append)
    assert [e["epoch"] for e in epochs] == [1, 2] and all(np.isfinite(e["val_loss"]) for e in epochs)
    assert m.parameter_names == small_set["parameter_names"] and m.bands == small_set["bands"]
    assert not Path(str(tmp_path / "m") + ".checkpoint").exists()
    r = sbipix.validate(m, tmp_path / "val", n=200, draws=100)
    assert set(r["parameters"]) >= {"log_mstar", "av_mag"} and r["n"] == 200
    assert (tmp_path / "val" / "report.md").is_file()
    # calibration: a copy with one quantile map per parameter, and on its own cases the coverage
    # after is nominal (to the discreteness of the selected cases and the maps' 0.5 % knots)
    c = sbipix.calibrate(m, tmp_path / "cal", n=400, draws=100, snr_min=1.0)
    cal = c.manifest["calibration"]
    assert set(cal["maps"]) == set(m.parameter_names) and cal["n"] == 400
    for name, (c68, c95) in cal["coverage_after"].items():
        assert abs(c68 - 0.68) <= 0.03 and abs(c95 - 0.95) <= 0.03, (name, c68, c95)
    with pytest.raises(sbipix.SbipixError, match="n"):
        sbipix.calibrate(m, tmp_path / "cal2", n=10)
    assert not (tmp_path / "cal2").exists()
    with pytest.raises(sbipix.SbipixError, match="already exists"):
        sbipix.train(small_set["path"], tmp_path / "m", max_epochs=1, progress=False)
    with pytest.raises(sbipix.SbipixError, match="unknown flow"):
        sbipix.train(small_set["path"], tmp_path / "m2", flow="glow", progress=False)
    with pytest.raises(ZeroDivisionError):  # a failing progress callback surfaces as itself
        sbipix.train(small_set["path"], tmp_path / "m3", layers=1, hidden=8, hidden_layers=1, max_epochs=1, progress=lambda e: 1 / 0)
    # a subset of the parameters, as the default model (docs/inference.md)
    five = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"]
    m5 = sbipix.train(small_set["path"], tmp_path / "m5", layers=1, hidden=8, hidden_layers=1, max_epochs=1, progress=False, params=five)
    assert m5.parameter_names == five
    with pytest.raises(sbipix.SbipixError, match="no parameter \"colour\""):
        sbipix.train(small_set["path"], tmp_path / "m6", max_epochs=1, progress=False, params=["log_mstar", "colour"])


# --- the posterior -------------------------------------------------------------------------------


def test_model_load(model):
    assert model.bands[0] == "F090W" and len(model.bands) == 19
    assert "log_mstar" in model.parameter_names and model.max_redshift == 7.5
    assert model.manifest["format"] == "sbipix-model"
    with pytest.raises(sbipix.SbipixError, match="sbipix model directory"):
        sbipix.Model.load("/no/such/model")


def test_sample_covers_simulated_truths(model, default_set):
    s = default_set
    r = (s["flux_obs"] / s["sigma"])[:, [6, 8, 11]]  # F277W, F356W, F444W (SBIPIX's selection)
    ok = np.isfinite(r)
    snr = np.where(ok, r, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    idx = np.where(snr > 5)[0][:300]
    assert len(idx) > 100
    # the network alone (refine=False; the default is the exact posterior, tested below)
    draws = model.sample(s["flux_obs"][idx], s["sigma"][idx], s["redshift"][idx], n=300, mask=s["observed"][idx], seed=3, refine=False)
    assert draws.shape == (len(idx), 300, len(model.parameter_names)) and draws.dtype == np.float32
    j = model.parameter_names.index("log_mstar")
    k = s["parameter_names"].index("log_mstar")
    lo, hi = np.percentile(draws[:, :, j], [16, 84], axis=1)
    truth = s["theta"][idx, k]
    inside = int(np.sum((truth > lo) & (truth < hi)))
    # an independent truth: the simulated stellar mass lies in the 68 % interval as often as
    # calibrated intervals put it there (exact 99.9 % binomial bounds for these pixels)
    print(f"68 % coverage of log M* over {len(idx)} simulated pixels: {inside / len(idx):.3f}")
    assert_coverage("log M*", inside, len(idx), 0.68)
    assert np.median(np.abs(np.median(draws[:, :, j], axis=1) - truth)) < 0.2
    # deterministic for a seed; other seeds differ
    again = model.sample(s["flux_obs"][idx[:5]], s["sigma"][idx[:5]], s["redshift"][idx[:5]], n=300, mask=s["observed"][idx[:5]], seed=3, refine=False)
    np.testing.assert_array_equal(again, draws[:5])


def test_refined_samples_are_sharper_and_still_cover_truths(model, default_set):
    s = default_set
    r = (s["flux_obs"] / s["sigma"])[:, [6, 8, 11]]
    ok = np.isfinite(r)
    snr = np.where(ok, r, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    idx = np.where(snr > 50)[0][:24]
    assert len(idx) >= 20
    args = (s["flux_obs"][idx], s["sigma"][idx], s["redshift"][idx])
    net = model.sample(*args, n=200, mask=s["observed"][idx], seed=3, refine=False)
    # exact posteriors are the default; simulations have no systematic error
    assert sbipix.DEFAULTS["sample"]["refine"] is True and sbipix.DEFAULTS["sample"]["sys_err"] == 0.05
    ref = model.sample(*args, n=200, mask=s["observed"][idx], seed=3, sys_err=0.0)
    assert ref.shape == net.shape
    for name in ["log_mstar", "mass_weighted_age_gyr", "av_mag"]:
        j, k = model.parameter_names.index(name), s["parameter_names"].index(name)
        truth = s["theta"][idx, k]
        lo, hi = np.percentile(ref[:, :, j], [2.5, 97.5], axis=1)
        # 95 % intervals of a correct posterior: each parameter within exact binomial bounds
        assert_coverage(f"refined {name}", int(np.sum((truth >= lo) & (truth <= hi))), len(idx), 0.95)
        w_net = np.diff(np.percentile(net[:, :, j], [16, 84], axis=1), axis=0)
        w_ref = np.diff(np.percentile(ref[:, :, j], [16, 84], axis=1), axis=0)
        # the likelihood pins bright pixels far better than the network resolves them
        assert np.median(w_ref / w_net) < 0.5, (name, np.median(w_ref / w_net))
    with pytest.raises(sbipix.SbipixError, match="sys_err"):
        model.sample(*args, n=10, mask=s["observed"][idx], refine=True, sys_err=-1)


def test_sample_band_names_and_missing(model):
    f = np.array([[0.01, 0.02, 0.03]])
    e = np.array([[0.001, 0.001, 0.001]])
    a = model.sample(f, e, 2.0, n=50, bands=["F277W", "F356W", "F444W"], seed=1)
    full_f = np.full((1, 19), np.nan)
    full_e = np.full((1, 19), np.nan)
    for v, b in zip(range(3), ["F277W", "F356W", "F444W"]):
        full_f[0, model.bands.index(b)] = f[0, v]
        full_e[0, model.bands.index(b)] = e[0, v]
    b = model.sample(full_f, full_e, [2.0], n=50, seed=1)
    np.testing.assert_array_equal(a, b)
    # a 1-d input is one pixel
    assert model.sample(full_f[0], full_e[0], 2.0, n=10).shape == (1, 10, len(model.parameter_names))


def test_sample_bad_input(model):
    f = np.ones((3, 19)) * 0.01
    e = np.ones((3, 19)) * 0.001
    with pytest.raises(sbipix.SbipixError, match="the model takes 19 bands"):
        model.sample(f[:, :5], e[:, :5], 1.0)
    with pytest.raises(sbipix.SbipixError, match="one value per pixel"):
        model.sample(f, e, [1.0, 2.0])
    with pytest.raises(sbipix.SbipixError, match="outside the trained range"):
        model.sample(f, e, 9.0)
    with pytest.raises(sbipix.SbipixError, match="not among the model's bands"):
        model.sample(f[:, :1], e[:, :1], 1.0, bands=["F999W"])
    with pytest.raises(sbipix.SbipixError, match="rows"):
        model.sample(f, e[:2], 1.0)


def test_sample_releases_the_gil(model):
    f = np.tile(np.linspace(0.005, 0.05, 19), (3000, 1))
    e = np.full((3000, 19), 0.002)
    ticks = [0]
    seen = {}
    done = threading.Event()

    def work():
        # the compiled call alone: the Python wrapper around it releases the GIL by itself (numpy,
        # printing the log), which would count ticks whatever the Rust code does
        try:
            args = model._photometry(f, e, 2.0, None, None)
            sbipix._core.sample(model._m, *[a[:1] for a in args], n=1, seed=0)  # one-off set-up (imports) done
            seen["before"] = ticks[0]
            sbipix._core.sample(model._m, *args, n=200, seed=0)
            seen["after"] = ticks[0]
        finally:
            done.set()

    # With a switch interval far longer than the test, a thread that holds the GIL keeps it until
    # it blocks or releases it: the main thread's ticks can then only advance while the worker is
    # inside the compiled sample if that released the GIL (main yields it back at every sleep(0)).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=work)
        t.start()
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0)
        t.join()
    finally:
        sys.setswitchinterval(interval)
    # measured: ≈ 48 000 ticks with the GIL released, 0 with it held (the call without
    # `py.detach`); ≥ 10 leaves room for a stray release inside the call, not for a held GIL
    assert seen["after"] - seen["before"] >= 10, f"the main thread did not run while the worker sampled: {seen}"


# --- maps ----------------------------------------------------------------------------------------

@pytest.fixture
def jades():
    """The real JADES cube of the shared data. CI always has the shared folder beside the
    checkout: a missing cube fails the test (it must not pass without running)."""
    assert JADES.is_file(), f"{JADES} not found: these tests need the project's shared data (set SBIPIX_SHARED)"
    return JADES


def test_map_cube_matches_command_line_and_astropy(tmp_path, model, jades):
    from astropy.io import fits

    subprocess.run([cli(), "map", "--cube", str(JADES), "--redshift", "3", "--draws", "200", "--out", str(tmp_path / "cli")], check=True, capture_output=True)
    m = model.map_cube(JADES, redshift=3, draws=200, out=tmp_path / "py")
    assert m.summary["n_pixels"] == 682 and m.summary["bands_missing"] == ["F430M", "F460M", "F480M"]
    with fits.open(tmp_path / "cli" / "maps.fits") as c, fits.open(tmp_path / "py" / "maps.fits") as p:
        names = [h.name for h in c[1:]]
        assert names == list(m) == [h.name for h in p[1:]]
        for name in names:
            np.testing.assert_array_equal(c[name].data, m[name], err_msg=name)
            np.testing.assert_array_equal(p[name].data, m[name], err_msg=name)
    cli_summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    for k in ["log_mstar_resolved", "log_mstar_integrated", "ppc_median_chi2_reduced"]:
        assert cli_summary[k] == m.summary[k]
    assert (tmp_path / "py" / "maps.png").is_file()


def test_map_arrays_equals_map_cube(model, jades):
    from astropy.io import fits

    with fits.open(JADES) as h:
        flux = h["FLUX"].data.astype(np.float64)
        err = h["ERR"].data.astype(np.float64)
        bands = [h[0].header[f"BAND{i}"] for i in range(flux.shape[0])]
    a = model.map(flux[:, 30:80, 60:140], err[:, 30:80, 60:140], bands, 3.0, draws=100, ppc=False)
    assert a["LOG_MSTAR_P50"].shape == (50, 80) and "PPC_CHI2" not in a
    fitted = a["MASK"] == 1
    assert fitted.sum() > 50 and np.all(np.isfinite(a["LOG_MSTAR_P50"][fitted])) and np.all(np.isnan(a["LOG_MSTAR_P50"][~fitted]))
    with pytest.raises(sbipix.SbipixError, match="band names"):
        model.map(flux, err, bands[:3], 3.0)
    with pytest.raises(sbipix.SbipixError, match=r"\(bands, y, x\)"):
        model.map(flux[0], err[0], bands, 3.0)


def test_validate_like_images_equals_like_cube(tmp_path, jades):
    """Test pixels like the real JADES cube, given as the cube or as its 19 bands written as
    science and σ images (astropy), are the same test cases: the same metrics."""
    from astropy.io import fits

    with fits.open(jades) as h:
        flux, err, unit = h["FLUX"].data, h["ERR"].data, h["FLUX"].header.get("BUNIT", "uJy")
        bands = [h[0].header[f"BAND{i}"] for i in range(flux.shape[0])]
    sci, sig = [], []
    for b, band in enumerate(bands):
        for kind, data, paths in [("sci", flux, sci), ("err", err, sig)]:
            p = tmp_path / f"{kind}_{band}.fits"
            fits.PrimaryHDU(data[b].astype(np.float32), header=fits.Header({"BUNIT": unit})).writeto(p)
            paths.append(p)
    kw = dict(n=600, draws=50, seed=77)
    cube = sbipix.validate("default", tmp_path / "cube", like=jades, **kw)
    images = sbipix.validate("default", tmp_path / "images", like_images=sci, like_errors=sig, like_bands=bands, **kw)
    assert images["like"]["pixels"] == cube["like"]["pixels"] > 600
    assert images["parameters"] == cube["parameters"]
    with pytest.raises(sbipix.SbipixError, match="like_error_kind"):
        sbipix.validate("default", tmp_path / "bad", like_images=sci, like_errors=sig, like_error_kind="variance", **kw)
    assert not (tmp_path / "bad").exists()


def test_map_bad_input(tmp_path, model):
    with pytest.raises(sbipix.SbipixError, match="no such file"):
        model.map_cube(tmp_path / "missing.fits", redshift=2)
    (tmp_path / "junk.fits").write_text("not fits")
    with pytest.raises(sbipix.SbipixError, match="not a readable FITS file"):
        model.map_cube(tmp_path / "junk.fits", redshift=2)
    flux = np.full((3, 8, 8), 0.01)
    err = np.full((3, 8, 8), 0.001)
    with pytest.raises(sbipix.SbipixError, match="outside the trained range"):
        model.map(flux, err, ["F277W", "F356W", "F444W"], 12.0, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    # a σ map with a negative value is named with its band
    err[1, 2, 3] = -1.0
    with pytest.raises(sbipix.SbipixError, match="F356W"):
        model.map(flux, err, ["F277W", "F356W", "F444W"], 2.0)


def test_example_script_runs(tmp_path):
    """The worked example (examples/map_jades.py) runs end to end and writes its figure."""
    assert JADES.is_file(), f"{JADES} not found: this test needs the project's shared data (set SBIPIX_SHARED)"
    pytest.importorskip("matplotlib")
    script = ROOT / "examples" / "map_jades.py"
    out = tmp_path / "fig.png"
    subprocess.run([os.sys.executable, str(script), str(JADES), str(out), "--draws", "100"], check=True, capture_output=True)
    assert out.is_file() and out.stat().st_size > 10_000


# --- integrated photometry / catalogues ----------------------------------------------------------


def test_fit_recovers_masses_of_summed_pixels(model, default_set):
    """Galaxies made of 300 simulated pixels (truth: log M* + log10 300), 10 % errors in the 11
    NIRCam bands of a typical catalogue: the known masses lie in the 68 % intervals as often as
    calibrated intervals put them there (exact 99.9 % binomial bounds)."""
    s = default_set
    keep = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F444W"]
    cols = [s["bands"].index(b) for b in keep]
    ft = s["flux_true"][:, cols].astype(np.float64) * 300.0
    good = np.where(ft[:, -1] > 0)[0][:300]
    rng = np.random.default_rng(5)
    err = 0.1 * np.abs(ft[good]) + 1e-9
    flux = ft[good] + err * rng.normal(size=err.shape)
    draws = model.fit(flux, err, s["redshift"][good], n=400, bands=keep, seed=1)
    j = model.parameter_names.index("log_mstar")
    truth = s["theta"][good, s["parameter_names"].index("log_mstar")] + np.log10(300.0)
    lo, med, hi = np.percentile(draws[:, :, j], [16, 50, 84], axis=1)
    inside = int(np.sum((truth > lo) & (truth < hi)))
    bias = np.median(med - truth)
    print(f"integrated fits: 68 % coverage {inside / len(good):.3f}, bias {bias:+.3f}")
    assert abs(bias) < 0.2, bias
    assert_coverage("log M* of the integrated fits", inside, len(good), 0.68)


def test_fit_catalog_matches_command_line(tmp_path, model):
    cat = tmp_path / "cat.csv"
    cat.write_text(
        "id,redshift,flux_ujy_F444W,err_ujy_F444W,flux_ujy_F277W,err_ujy_F277W,flux_ujy_F150W,err_ujy_F150W\n"
        "a,2.0,1.0,0.1,0.6,0.06,0.3,0.03\nb,9.5,1.0,0.1,0.5,0.05,0.2,0.02\nc,4.0,0.2,0.02,0.1,0.01,0.03,0.005\n"
    )
    r = model.fit_catalog(cat, draws=300, out=tmp_path / "py.csv", refine=False)
    assert r["status"].tolist()[0] == "ok" and "outside" in r["status"][1]
    assert np.isnan(r["log_mstar_p50"][1]) and np.isfinite(r["log_mstar_p50"][0])
    subprocess.run(
        [cli(), "fit", "--catalog", str(cat), "--out", str(tmp_path / "cli.csv"), "--draws", "300", "--fast"], check=True, capture_output=True
    )
    assert (tmp_path / "cli.csv").read_text() == (tmp_path / "py.csv").read_text()
    assert "refined" not in r
    # the out-of-distribution flags: the CSV's column. F150W, F277W, F444W alone: no pattern of the
    # main network's training, but COSMOS-Web's four bands with one dropped are 14 % of its companion
    # network's, which samples these rows (docs/inference.md), so no bands flag (bit 2)
    with open(tmp_path / "py.csv") as fh:
        ood_csv = np.array([float(row["ood"] or "nan") for row in csv.DictReader(fh)])
    assert np.array_equal(r["ood"], ood_csv, equal_nan=True) and int(r["ood"][0]) & 2 == 0, (r["ood"], ood_csv)
    # exact posteriors (the default): the same file as `sbipix fit`, and the per-row flag in the dict
    rr = model.fit_catalog(cat, draws=300, ppc=False, out=tmp_path / "pyr.csv")
    subprocess.run(
        [cli(), "fit", "--catalog", str(cat), "--out", str(tmp_path / "clir.csv"), "--draws", "300", "--no-ppc"],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "clir.csv").read_text() == (tmp_path / "pyr.csv").read_text()
    assert rr["refined"][0] == 1 and np.isnan(rr["refined"][1])
    # log U free: a logu column (within −4…−1 where fitted), the same file as `--free-logu`
    ru = model.fit_catalog(cat, draws=300, ppc=False, free_logu=True, out=tmp_path / "pyu.csv")
    assert np.all((ru["logu_p16"][[0, 2]] >= -4) & (ru["logu_p84"][[0, 2]] <= -1)) and "logu_p50" not in rr
    subprocess.run(
        [cli(), "fit", "--catalog", str(cat), "--out", str(tmp_path / "cliu.csv"), "--draws", "300", "--no-ppc", "--free-logu"],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "cliu.csv").read_text() == (tmp_path / "pyu.csv").read_text()
    with pytest.raises(sbipix.SbipixError, match="free_logu"):
        model.fit_catalog(cat, draws=50, refine=False, free_logu=True)
    # no redshift column `z`: photometric redshifts (3 bands: flagged), parameters marginalised
    # over p(z); the same numbers from Model.photo_z on the arrays
    quick = {"templates": 128, "step": 0.05}
    rz = model.fit_catalog(cat, redshift_column="z", draws=200, ppc=False, refine=False, photo_z_settings=quick)
    assert rz["pz"].shape == (3, len(rz["z_grid"])) and np.allclose(rz["pz"].sum(axis=1), 1.0)
    assert np.allclose(rz["redshift"], rz["z_p50"]) and all("few_bands" in f for f in rz["z_flags"])
    assert np.all(np.isfinite(rz["log_mstar_p50"]))
    f = np.array([[0.3, 0.6, 1.0], [0.2, 0.5, 1.0], [0.03, 0.1, 0.2]])
    e = np.array([[0.03, 0.06, 0.1], [0.02, 0.05, 0.1], [0.005, 0.01, 0.02]])
    pz = model.photo_z(f, e, bands=["F150W", "F277W", "F444W"], sys_err=0.05, settings=quick)
    assert np.allclose(pz["pz"], rz["pz"], atol=1e-6) and np.allclose(pz["z_p50"], rz["z_p50"])
    with pytest.raises(sbipix.InvalidArgumentError, match="grid step"):
        model.photo_z(f, e, bands=["F150W", "F277W", "F444W"], settings={"step": 0})
    with pytest.raises(sbipix.SbipixError, match="outside the trained range"):
        model.fit(np.ones((1, 19)), np.ones((1, 19)) * 0.1, 8.0)


def test_photo_z_warns_when_photometry_scatters_more_than_its_errors(model):
    # docs/photo-z.md, *Why the PRISM set fails*: young z ≈ 6 galaxies made by bagpipes with their
    # true errors pass; the same galaxies with the PRISM table's undeclared noise are warned of
    root = Path(__file__).resolve().parents[2] / "docs" / "data" / "photoz" / "bagpipes"
    bands = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F444W"]

    def rows(name, set_name):
        with open(root / name) as fh:
            sel = [r for r in csv.DictReader(fh) if r["set"] == set_name][:100]
        return tuple(np.array([[float(r[f"{k}_ujy_{b}"]) for b in bands] for r in sel]) for k in ("flux", "err"))

    quick = {"templates": 256, "step": 0.02}
    with warnings.catch_warnings():
        warnings.simplefilter("error", sbipix.SbipixWarning)
        model.photo_z(*rows("catalogue.csv", "z6_young"), bands=bands, settings=quick)
    with pytest.warns(sbipix.SbipixWarning, match=r"median χ² of \d+\.\d+ per band over 100 rows"):
        model.photo_z(*rows("catalogue_prism_table.csv", "z6_young_prism_table"), bands=bands, settings=quick)


# --- survey mode ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synthetic_survey(tmp_path_factory):
    """Six synthetic galaxies with truth, written by `sbipix demo --survey` (cubes + manifest)."""
    d = tmp_path_factory.mktemp("survey")
    subprocess.run([cli(), "demo", "--survey", "6", "--out", str(d / "demo")], check=True, capture_output=True)
    return d / "demo" / "manifest.csv"


def _maps(out, gid):
    from astropy.io import fits

    with fits.open(Path(out) / "galaxies" / gid / "maps.fits") as h:
        return {x.name: x.data.copy() for x in h[1:]}


def _same_outputs(a, b):
    ra, rb = sbipix._read_galaxies_csv(a), sbipix._read_galaxies_csv(b)
    assert [r["id"] for r in ra] == [r["id"] for r in rb]
    for x, y in zip(ra, rb):
        x, y = dict(x), dict(y)
        x.pop("ms_per_pixel"), y.pop("ms_per_pixel")  # wall time
        assert x == y
        if x["status"] == "ok":
            ma, mb = _maps(a, x["id"]), _maps(b, x["id"])
            assert list(ma) == list(mb)
            for k in ma:
                np.testing.assert_array_equal(ma[k], mb[k], err_msg=f"{x['id']} {k}")


def test_survey_single_machine_matches_cli(tmp_path, synthetic_survey):
    rows = sbipix.survey(synthetic_survey, tmp_path / "py", draws=100, ppc=False)
    assert len(rows) == 6 and sum(r["status"] == "ok" for r in rows) >= 4
    subprocess.run([cli(), "survey", "--manifest", str(synthetic_survey), "--out", str(tmp_path / "cli"), "--draws", "100", "--no-ppc"], capture_output=True)
    _same_outputs(tmp_path / "py", tmp_path / "cli")
    assert (tmp_path / "py" / "outshining.png").is_file()
    # the network alone: refine=False is `--fast`
    sbipix.survey(synthetic_survey, tmp_path / "pyfast", draws=100, ppc=False, refine=False)
    subprocess.run(
        [cli(), "survey", "--manifest", str(synthetic_survey), "--out", str(tmp_path / "clifast"), "--draws", "100", "--no-ppc", "--fast"],
        capture_output=True,
    )
    _same_outputs(tmp_path / "pyfast", tmp_path / "clifast")


def test_survey_on_dask_is_identical_and_survives_a_killed_worker(tmp_path, synthetic_survey):
    distributed = pytest.importorskip("dask.distributed")
    import signal

    sbipix.survey(synthetic_survey, tmp_path / "single", draws=100, ppc=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        rows = sbipix.survey(synthetic_survey, tmp_path / "dask", draws=100, ppc=False, client=client)
        assert len(rows) == 6
        _same_outputs(tmp_path / "single", tmp_path / "dask")

        # kill one worker process (SIGKILL, no goodbye) as soon as the first galaxy is written:
        # Dask reschedules its galaxies; nothing is lost and nothing differs
        pids = list(client.run(os.getpid).values())
        out = tmp_path / "dask_kill"
        killed = []

        def killer():
            deadline = time.time() + 120
            while time.time() < deadline:
                g = out / "galaxies"
                if g.is_dir() and any((p / "status.json").is_file() for p in g.iterdir()):
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
                time.sleep(0.01)

        t = threading.Thread(target=killer)
        t.start()
        rows = sbipix.survey(synthetic_survey, out, draws=100, ppc=False, client=client)
        t.join()
        assert killed, "the worker was not killed (the survey finished too fast to test)"
        assert len(rows) == 6
        assert not [p for p in (out / "galaxies").iterdir() if p.name.startswith(".sbipix-tmp")]
        _same_outputs(tmp_path / "single", out)


def test_survey_bad_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("id,cube,redshift\na,nope.fits,2\n")
    rows = sbipix.survey(tmp_path / "m.csv", tmp_path / "o", draws=50, ppc=False)
    assert "no such file" in rows[0]["status"]
    (tmp_path / "bad.csv").write_text("id,colour\na,red\n")
    with pytest.raises(sbipix.SbipixError, match="unknown column `colour`"):
        sbipix.survey(tmp_path / "bad.csv", tmp_path / "o2")


def test_photometry_with_given_filter_files():
    """Each path is one curve: the SBIPIX authors' own F444W and F090W curves (shared data) give
    the bands in the given order and fluxes within 1 % of the default (sedpy) curves."""
    d = _shared() / "filters" / "FILTERS_JWST"
    if not d.is_dir():
        pytest.skip("shared filter curves not present")
    fs = [d / "JWST_F444W.dat.txt", d / "JWST_F090W.dat.txt"]
    params = {"redshift": [1.0, 3.0], "log_mass_formed": 10.0, "age_gyr": 1.0, "tau_gyr": 0.5}
    p = sbipix.photometry(params, filters=fs)
    q = sbipix.photometry(params)
    assert [k for k in p if k.startswith("flux_ujy_")] == ["flux_ujy_F444W", "flux_ujy_F090W"]
    for b in ["F444W", "F090W"]:
        np.testing.assert_allclose(p[f"flux_ujy_{b}"], q[f"flux_ujy_{b}"], rtol=0.01)
    with pytest.raises(sbipix.SbipixError, match="no_such_curve"):
        sbipix.photometry(params, filters=[d / "no_such_curve.dat"])
