#!/usr/bin/env python3
"""sbipix's exact posteriors beside bagpipes 1.3.6 + nautilus, on photometry made by bagpipes.

Issue 17, deliverable 5; supersedes compare_refine_bagpipes.py (8 galaxies, photometry from
sbipix itself, sbipix on sedpy's filter curves; that script and its BENCHMARKS.md numbers are
kept as they were). bagpipes is GPL-3 and not part of sbipix: run this with the Python of a
throw-away virtual environment (`python3 -m venv /tmp/bp && /tmp/bp/bin/pip install
bagpipes==1.3.6 nautilus-sampler`); nothing of it is committed.

Usage:
  python compare_exact_bagpipes.py SBIPIX FILTER_LIST OUT_DIR [--work DIR] [--pixels 32]
         [--galaxies 12] [--seed 20261202] [--jobs 2] [--stage all|make|sbipix|bagpipes|compare]

FILTER_LIST is SBIPIX's filters_jades_no_wfc.dat (the 19 bands; paths relative to it). Both codes
see these curves: bagpipes through `filt_list`, sbipix through a copy of the sbipix2025 model folder
whose survey.toml names them instead of sedpy's curves (the network, prior and weights are the
sbipix2025 model's: the prior bagpipes is given, and the default until 2026-12-03; the network is only
the proposal of the exact posterior).

The cases (all drawn with one generator seeded with SEED):
* PIXELS "pixel" cases, log M formed uniform in 6.5–9, and GALAXIES "galaxy" cases, 9.5–11;
  z uniform in 0.5–6; the rest from the fitting prior: age uniform in (0, t_univ(z)) (at least
  10 Myr), log τ/Gyr uniform in (−2, 2), log Z/Z☉ uniform in (−2.27, 0.4), Calzetti A_V uniform
  in (0, 4.3), log U = −2;
* noiseless photometry from bagpipes' own `model_galaxy` (delayed τ, Calzetti with η = 1,
  nebular log U = −2, DL07 dust emission with bagpipes' defaults q_PAH 2, U_min 1, γ 0.01 — the
  settings of sbipix's forward model, docs/forward-model.md — Inoue 2014 IGM, bagpipes' grid);
* Gaussian noise σ_b = sqrt((f_ref/S)² + (0.002 f_b)²), f_ref the mean flux of F277W, F356W,
  F444W (SBIPIX's selection bands), S log-uniform in 5–200 (stratified so the cases spread
  evenly); the S/N recorded is that of sbipix's selection (mean of f/σ over those three bands).

Fits, one core each:
* sbipix, exact posteriors (the default), `--sys-err 0`, no PPC, 2000 draws: galaxy cases by
  one `sbipix --threads 1 fit --catalog … --error-floor 0` call (rows of `fit` are integrated
  photometry: log M formed prior 4–15); pixel cases by `sbipix --threads 1 map --cube …` on a
  1×1-pixel cube per case (pixels: log M formed prior 4–12; map's other product, the fit of the
  "integrated" photometry of that one pixel, costs a second fit and is included in the time).
  Three forward-model settings, each its own model folder (VARIANTS below): "bagpipes_grid"
  (nearest-pixel lines on bagpipes' wavelength grid, max_redshift 10: the model the data were made
  with, up to sbipix's ≤ 0.01 mag differences), "shipped" (the default model's own forward
  model: nearest-pixel lines on the max_redshift 15 grid) and "exact_lines" (lines at their exact
  wavelengths, the default of new models); and "bagpipes_grid_seed2", the first again with
  another seed (sbipix's own Monte-Carlo scatter, summarised apart). Added 2026-12-04/05:
  "bagpipes_filters" (also bagpipes' filter integration, `filter_sampling: model_grid`) and
  "bagpipes_conventions" (also its SFH sampling, `sfh_binning: bagpipes_grid`: bagpipes'
  photometry to p95 0.0009 mag), each with a _seed2; `--stage convergence` reports every
  bagpipes_* variant it finds.
* bagpipes + nautilus, 400 live points, `pool=1`, OMP_NUM_THREADS=1, n_posterior 2000, same
  prior (massformed (4, 12) for pixels, (4, 15) for galaxies), redshift fixed at the truth; at
  most JOBS fits at a time, each in its own process, each case's result written to
  WORK/bagpipes/<id>.json as soon as it is done (a rerun skips finished cases).
  `--bagpipes-case ID --logz-max X` fits one case with the metallicity prior cut at log Z/Z☉ < X:
  its evidence against the full fit's gives bagpipes' posterior mass in that region
  (V_X · exp(lnZ_X − lnZ), V_X the prior fraction), to check a mode one code sees and the other not.
  `--bagpipes-case ID --n-live N [--n-eff M] [--discard-exploration]` refits one case sampled harder
  (WORK/bagpipes/<id>_nlive<N>[_neff<M>][_discard].json);
  `--stage convergence` then compares those refits with the 400-point fits and with sbipix
  (OUT/compare.csv → OUT/convergence.csv): is the reference converged?

log SFR₁₀₀ is compared with bagpipes' draws floored as sbipix floors its own (an sSFR of 1e-14 /yr
of the mass formed, docs/training-sets.md), the unfloored quantiles kept beside.

Outputs in OUT_DIR: cases.csv (truths, S/N, photometry), compare.csv (per case, variant and
parameter: both medians and 16/84 %, offset in bagpipes σ, width ratio, S/N, z, times),
summary.json and summary.md.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

PARAMS = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"]
VARIANTS = {  # name → (changes to the default model's forward_model, sbipix --seed)
    # line_placement explicit: a model.json without it read as nearest_pixel until a816817 and
    # reads as exact since (the 2026-12-02 run relied on the old reading)
    "bagpipes_grid": ({"max_redshift": 10.0, "line_placement": "nearest_pixel"}, 1),
    "shipped": ({}, 1),
    "exact_lines": ({"line_placement": "exact"}, 1),
    # the primary again with another seed: sbipix's own Monte-Carlo scatter
    "bagpipes_grid_seed2": ({"max_redshift": 10.0, "line_placement": "nearest_pixel"}, 2),
    # bagpipes' grid and lines and also its filter integration (the curve resampled onto the model
    # grid first; FilterSampling::ModelGrid, 2026-12-04): the closest sbipix gets to the model the
    # data were made with (tests/bagpipes.rs: p99 |Δm| 0.0095 against 0.023 mag)
    "bagpipes_filters": ({"max_redshift": 10.0, "line_placement": "nearest_pixel", "filter_sampling": "model_grid"}, 1),
    "bagpipes_filters_seed2": ({"max_redshift": 10.0, "line_placement": "nearest_pixel", "filter_sampling": "model_grid"}, 2),
    # every convention of bagpipes sbipix can follow: also its SFH sampling (SfhBinning::BagpipesGrid;
    # tests/bagpipes.rs: median |Δm| 0.0008, p95 0.0009 mag) — the model the data were made with
    "bagpipes_conventions": ({"max_redshift": 10.0, "line_placement": "nearest_pixel", "filter_sampling": "model_grid",
                              "sfh_binning": "bagpipes_grid"}, 1),
    "bagpipes_conventions_seed2": ({"max_redshift": 10.0, "line_placement": "nearest_pixel", "filter_sampling": "model_grid",
                                    "sfh_binning": "bagpipes_grid"}, 2),
}
PRIMARY = "bagpipes_grid"
SNR_BANDS = ["F277W", "F356W", "F444W"]
MASS_HI = {"pixel": 12.0, "galaxy": 15.0}  # sbipix: +3 dex for integrated photometry


def band_names(filters):
    return [re.search(r"(?<![A-Z0-9])F\d{3,4}[A-Z]{1,2}", os.path.basename(f).upper()).group(0) for f in filters]


def read_filter_list(flist):
    base = os.path.dirname(os.path.abspath(flist))
    return [os.path.join(base, l.strip()) for l in open(flist) if l.strip() and not l.startswith("#")]


def write_csv(path, rows, fields=None):
    fields = fields or list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------
# 1. cases: truths from the prior, photometry from bagpipes, noise
# ---------------------------------------------------------------------------------------------
def make_cases(a, filters, bands):
    import bagpipes as pipes
    from bagpipes import utils

    rng = np.random.default_rng(a.seed)
    cases = []
    kinds = ["pixel"] * a.pixels + ["galaxy"] * a.galaxies
    # stratified S (log-uniform 5–200) within each kind
    s_of = {}
    for kind, n in (("pixel", a.pixels), ("galaxy", a.galaxies)):
        u = (rng.permutation(n) + rng.uniform(0, 1, n)) / max(n, 1)
        s_of[kind] = list(5.0 * 40.0 ** u)
    model = None
    for i, kind in enumerate(kinds):
        z = rng.uniform(0.5, 6.0)
        t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
        lo, hi = (6.5, 9.0) if kind == "pixel" else (9.5, 11.0)
        r = dict(id=f"{kind[0]}{sum(1 for c in cases if c['kind'] == kind):02d}", kind=kind, redshift=z,
                 log_mass_formed=rng.uniform(lo, hi), age_gyr=max((1 - rng.uniform(0, 1)) * t_univ, 0.01),
                 tau_gyr=10 ** rng.uniform(-2, 2), logzsol=rng.uniform(-2.27, 0.4), av_mag=rng.uniform(0, 4.3),
                 logu=-2.0, snr_target=s_of[kind].pop())
        comp = {"redshift": z,
                "delayed": {"age": r["age_gyr"], "tau": r["tau_gyr"], "massformed": r["log_mass_formed"],
                            "metallicity": 10 ** r["logzsol"]},
                "dust": {"type": "Calzetti", "Av": r["av_mag"]},
                "nebular": {"logU": -2.0}}
        if model is None:
            model = pipes.model_galaxy(comp, filt_list=filters, phot_units="mujy")
        model.update(comp)
        f = np.array(model.photometry, dtype=float)
        sfh = model.sfh
        r.update(true_log_mstar=sfh.stellar_mass, true_log_sfr_100myr=np.log10(max(sfh.sfr, 1e-30)),
                 true_mass_weighted_age_gyr=sfh.mass_weighted_age)
        f_ref = np.mean([f[bands.index(b)] for b in SNR_BANDS])
        sig = np.sqrt((f_ref / r["snr_target"]) ** 2 + (0.002 * f) ** 2)
        obs = f + rng.normal(0, sig)
        r["snr"] = float(np.mean([obs[bands.index(b)] / sig[bands.index(b)] for b in SNR_BANDS]))
        for b, v, s, t in zip(bands, obs, sig, f):
            r[f"flux_ujy_{b}"], r[f"err_ujy_{b}"], r[f"true_flux_ujy_{b}"] = v, s, t
        cases.append(r)
    # interleave pixels and galaxies so a partial run covers both
    order = sorted(range(len(cases)), key=lambda k: k / a.pixels if k < a.pixels else (k - a.pixels + 0.5) / a.galaxies)
    return [cases[k] for k in order]


def load_cases(out):
    cases = list(csv.DictReader(open(os.path.join(out, "cases.csv"))))
    for c in cases:
        for k, v in c.items():
            if k not in ("id", "kind"):
                c[k] = float(v)
    return cases


# ---------------------------------------------------------------------------------------------
# 2. sbipix
# ---------------------------------------------------------------------------------------------
def model_folder(a, filters, bands, variant):
    """A copy of the sbipix2025 model with SBIPIX's filter curves and the variant's forward model.
    Its prior is the one bagpipes is given here (age uniform since the big bang, log M formed
    uniform); it was the default when this comparison was first run (2026-12-02). The default
    since 2026-12-03 has a physical prior (mass per kpc², ages over the last decade of cosmic
    time): a different posterior, not comparable with these bagpipes fits."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "sbipix2025")
    dst = os.path.join(a.work, "models", variant)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    curve = dict(zip(bands, filters))
    lines, current = [], None
    for line in open(os.path.join(src, "survey.toml")):
        m = re.match(r'\s*name\s*=\s*"([^"]+)"', line)
        if m:
            current = m.group(1)
        if re.match(r"\s*filter\s*=", line):
            line = f'filter = "{curve[current]}"\n'
        lines.append(line)
    open(os.path.join(dst, "survey.toml"), "w").writelines(lines)
    m = json.load(open(os.path.join(src, "model.json")))
    m["forward_model"].update(VARIANTS[variant][0])
    # The companion network (sparse band sets, docs/inference.md) never samples these 19-band
    # cases and would need the same changes: the copy goes without it.
    if m.pop("companion", None):
        shutil.rmtree(os.path.join(dst, "sparse"), ignore_errors=True)
    json.dump(m, open(os.path.join(dst, "model.json"), "w"), indent=1)
    return dst


def write_cube(path, c, bands):
    from astropy.io import fits

    flux = np.array([c[f"flux_ujy_{b}"] for b in bands]).reshape(len(bands), 1, 1)
    err = np.array([c[f"err_ujy_{b}"] for b in bands]).reshape(len(bands), 1, 1)
    h = fits.Header()
    for k, b in enumerate(bands):
        h[f"BAND{k}"] = b
    h["REDSHIFT"] = c["redshift"]
    h["BUNIT"] = "uJy"
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(flux, name="FLUX"),
                  fits.ImageHDU(err, name="ERR")]).writeto(path, overwrite=True)


def run_sbipix(a, cases, filters, bands):
    from astropy.io import fits

    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = {}
    path = os.path.join(a.work, "sbipix_results.csv")
    if os.path.exists(path):  # keep the variants not rerun
        res = {(r["variant"], r["id"]): {k: v for k, v in r.items() if k not in ("variant", "id")}
               for r in csv.DictReader(open(path)) if r["variant"] not in a.variants}
    for variant in a.variants:
        seed = str(VARIANTS[variant][1])
        mdir = model_folder(a, filters, bands, variant)
        wdir = os.path.join(a.work, "sbipix", variant)
        os.makedirs(wdir, exist_ok=True)
        # galaxies: one `fit` call
        gal = [c for c in cases if c["kind"] == "galaxy"]
        cat = os.path.join(wdir, "galaxies.csv")
        write_csv(cat, [{"id": c["id"], "redshift": c["redshift"],
                         **{k: c[k] for b in bands for k in (f"flux_ujy_{b}", f"err_ujy_{b}")}} for c in gal])
        t0 = time.time()
        subprocess.run([a.sbipix, "--threads", "1", "fit", "--model", mdir, "--catalog", cat, "--error-floor", "0",
                        "--sys-err", "0", "--no-ppc", "--draws", "2000", "--seed", seed, "--overwrite",
                        "--out", os.path.join(wdir, "galaxies_fit.csv")], check=True, env=env)
        t_gal = (time.time() - t0) / max(len(gal), 1)
        for r in csv.DictReader(open(os.path.join(wdir, "galaxies_fit.csv"))):
            res[(variant, r["id"])] = dict(time_s=t_gal, status=r["status"], summary_ms_per_pixel="",
                                          **{f"{p}_{q}": float(r[f"{p}_{q}"]) for p in PARAMS for q in ("p16", "p50", "p84")})
        # pixels: one 1×1 cube per case through `map`
        for c in cases:
            if c["kind"] != "pixel":
                continue
            cube = os.path.join(wdir, f"{c['id']}.fits")
            write_cube(cube, c, bands)
            out = os.path.join(wdir, c["id"])
            t0 = time.time()
            subprocess.run([a.sbipix, "--threads", "1", "map", "--model", mdir, "--cube", cube, "--redshift",
                            repr(c["redshift"]), "--unit", "uJy", "--bands", ",".join(bands), "--snr-min", "0",
                            "--sys-err", "0", "--no-ppc", "--draws", "2000", "--seed", seed, "--out", out],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            dt = time.time() - t0
            with fits.open(os.path.join(out, "maps.fits")) as h:
                r = {f"{p}_{q}": float(h[f"{p.upper()}_{q.upper()}"].data[0, 0]) for p in PARAMS for q in ("p16", "p50", "p84")}
            summ = json.load(open(os.path.join(out, "summary.json")))
            res[(variant, c["id"])] = dict(time_s=dt, status="ok", summary_ms_per_pixel=summ.get("ms_per_pixel"), **r)
        print(f"sbipix {variant}: done", flush=True)
    rows = [dict(variant=v, id=i, **r) for (v, i), r in res.items()]
    write_csv(path, rows,
              fields=["variant", "id", "status", "time_s", "summary_ms_per_pixel"] + [f"{p}_{q}" for p in PARAMS for q in ("p16", "p50", "p84")])


# ---------------------------------------------------------------------------------------------
# 3. bagpipes (one process per case)
# ---------------------------------------------------------------------------------------------
def fit_instructions(c, t_univ):
    """The fitting prior in bagpipes' terms (sbipix's delayed-τ prior; redshift fixed)."""
    return {"redshift": c["redshift"],
            "delayed": {"age": (0.0, t_univ), "tau": (0.01, 100.0), "tau_prior": "log_10",
                        "massformed": (4.0, MASS_HI[c["kind"]]), "metallicity": (10 ** -2.27, 10 ** 0.4),
                        "metallicity_prior": "log_10"},
            "dust": {"type": "Calzetti", "Av": (0.0, 4.3)},
            "nebular": {"logU": -2.0}}


def bagpipes_case(a, case_id, filters, bands):
    os.chdir(os.path.join(a.work, "bagpipes"))  # bagpipes writes ./pipes/
    import bagpipes as pipes
    from bagpipes import utils

    c = next(c for c in load_cases(a.out) if c["id"] == case_id)
    z = c["redshift"]
    t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
    data = np.array([[c[f"flux_ujy_{b}"], c[f"err_ujy_{b}"]] for b in bands])
    gal = pipes.galaxy(case_id, lambda _id: data, spectrum_exists=False, filt_list=filters, phot_units="mujy")
    instr = fit_instructions(c, t_univ)
    run, name = f"exact_s{a.seed}", case_id
    if a.logz_max is not None:  # the evidence of the region log Z/Z☉ < logz_max alone
        instr["delayed"]["metallicity"] = (10 ** -2.27, 10 ** a.logz_max)
        run, name = f"{run}_logz_lt_{a.logz_max:g}", f"{case_id}_logz_lt_{a.logz_max:g}"
    if a.n_live != 400 or a.n_eff or a.discard_exploration:
        # a convergence check of the reference: the same fit sampled harder
        tag = f"_nlive{a.n_live}" + (f"_neff{a.n_eff}" if a.n_eff else "") + ("_discard" if a.discard_exploration else "")
        run, name = run + tag, name + tag
    t0 = time.time()
    ft = pipes.fit(gal, instr, run=run, n_posterior=2000)
    ft.fit(verbose=False, sampler="nautilus", n_live=a.n_live, pool=1, n_eff=a.n_eff,
           discard_exploration=a.discard_exploration)
    t_fit = time.time() - t0
    ft.posterior.get_basic_quantities()
    t_all = time.time() - t0
    s = ft.posterior.samples
    draws = {"log_mstar": np.asarray(s["stellar_mass"]),
             "log_sfr_100myr": np.log10(np.maximum(np.asarray(s["sfr"]), 1e-30)),
             "mass_weighted_age_gyr": np.asarray(s["mass_weighted_age"]),
             "logzsol": np.log10(np.asarray(s["delayed:metallicity"])),
             "av_mag": np.asarray(s["dust:Av"])}
    out = {"id": case_id, "logz_max": a.logz_max, "time_fit_s": t_fit, "time_s": t_all,
           "n_eff": float(1.0 / ft.results["lnz_err"] ** 2), "lnz": float(ft.results["lnz"])}
    out.update(floored_sfr_quantiles(s))
    for p, v in draws.items():
        for q, val in zip(("p16", "p50", "p84"), np.percentile(v, [16, 50, 84])):
            out[f"{p}_{q}"] = float(val)
    tmp = os.path.join(a.work, "bagpipes", f"{name}.json.tmp")
    json.dump(out, open(tmp, "w"), indent=1)
    os.replace(tmp, os.path.join(a.work, "bagpipes", f"{name}.json"))


def floored_sfr_quantiles(s):
    """bagpipes' log SFR₁₀₀ draws with sbipix's floor (an sSFR of 1e-14 /yr of the mass formed,
    docs/training-sets.md) applied draw by draw: the same quantity as sbipix's."""
    v = np.log10(np.maximum(np.asarray(s["sfr"]), 10 ** (np.asarray(s["delayed:massformed"]) - 14.0)))
    return {f"log_sfr_100myr_floored_{q}": float(x) for q, x in zip(("p16", "p50", "p84"), np.percentile(v, [16, 50, 84]))}


def add_floored(a, cases):
    """Adds the floored log SFR quantiles to cases fitted before they were recorded (bagpipes
    loads its saved posterior from WORK/bagpipes/pipes/; no refit, the recorded times kept)."""
    d = os.path.join(a.work, "bagpipes")
    todo = [c for c in cases if os.path.exists(os.path.join(d, f"{c['id']}.json"))
            and "log_sfr_100myr_floored_p50" not in json.load(open(os.path.join(d, f"{c['id']}.json")))]
    if not todo:
        return
    os.chdir(d)
    import bagpipes as pipes
    from bagpipes import utils

    filters = read_filter_list(a.filters)
    bands = band_names(filters)
    for c in todo:
        data = np.array([[c[f"flux_ujy_{b}"], c[f"err_ujy_{b}"]] for b in bands])
        gal = pipes.galaxy(c["id"], lambda _id: data, spectrum_exists=False, filt_list=filters, phot_units="mujy")
        t_univ = float(np.interp(c["redshift"], utils.z_array, utils.age_at_z))
        ft = pipes.fit(gal, fit_instructions(c, t_univ), run=f"exact_s{a.seed}", n_posterior=2000)
        ft.posterior.get_basic_quantities()
        f = os.path.join(d, f"{c['id']}.json")
        out = json.load(open(f))
        out.update(floored_sfr_quantiles(ft.posterior.samples))
        json.dump(out, open(f + ".tmp", "w"), indent=1)
        os.replace(f + ".tmp", f)


def run_bagpipes(a, cases):
    d = os.path.join(a.work, "bagpipes")
    os.makedirs(d, exist_ok=True)
    todo = [c["id"] for c in cases if not os.path.exists(os.path.join(d, f"{c['id']}.json"))
            and (not a.only or c["id"] in a.only.split(","))]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    running = []
    while todo or running:
        while todo and len(running) < a.jobs:
            cid = todo.pop(0)
            log = open(os.path.join(d, f"{cid}.log"), "w")
            cmd = [sys.executable, os.path.abspath(__file__), a.sbipix, a.filters, a.out, "--work", a.work,
                   "--seed", str(a.seed), "--bagpipes-case", cid]
            running.append((cid, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.time()))
            print(f"bagpipes {cid}: started", flush=True)
        time.sleep(2)
        for item in list(running):
            cid, p, t0 = item
            if p.poll() is not None:
                running.remove(item)
                print(f"bagpipes {cid}: exit {p.returncode} after {time.time() - t0:.0f} s", flush=True)


# ---------------------------------------------------------------------------------------------
# 4. comparison
# ---------------------------------------------------------------------------------------------
def model_difference(a, cases, bands):
    """rms over the bands of (sbipix − bagpipes noiseless photometry of the truth) / σ: how far
    apart the two forward models are in units of each case's noise. sbipix's photometry command
    places the lines exactly (the exact_lines variant; the test suite's nearest-pixel comparison on
    bagpipes' grid is ≤ 0.004 mag median, docs/forward-model.md)."""
    path = os.path.join(a.work, "sbipix_truth_photometry.csv")
    if not os.path.exists(path):
        params = os.path.join(a.work, "truth_params.csv")
        write_csv(params, [{k: c[k] for k in ("id", "redshift", "log_mass_formed", "age_gyr", "tau_gyr", "logzsol",
                                               "av_mag", "logu")} for c in cases])
        subprocess.run([a.sbipix, "--threads", "1", "photometry", "--params", params, "--filters", a.filters,
                        "--out", path], check=True, stdout=subprocess.DEVNULL)
    ph = {r["id"]: r for r in csv.DictReader(open(path))}
    out = {}
    for c in cases:
        d = [(float(ph[c["id"]][f"flux_ujy_{b}"]) - c[f"true_flux_ujy_{b}"]) / c[f"err_ujy_{b}"] for b in bands]
        out[c["id"]] = float(np.sqrt(np.mean(np.square(d))))
    return out


def compare(a, cases, bands):
    mdiff = model_difference(a, cases, bands)
    sb = {(r["variant"], r["id"]): r for r in csv.DictReader(open(os.path.join(a.work, "sbipix_results.csv")))}
    bp = {}
    for c in cases:
        f = os.path.join(a.work, "bagpipes", f"{c['id']}.json")
        if os.path.exists(f):
            bp[c["id"]] = json.load(open(f))
    rows = []
    for variant in VARIANTS:
        for c in cases:
            if c["id"] not in bp or (variant, c["id"]) not in sb:
                continue
            s, b = sb[(variant, c["id"])], bp[c["id"]]
            for p in PARAMS:
                sq = [float(s[f"{p}_{q}"]) for q in ("p16", "p50", "p84")]
                raw = [b[f"{p}_{q}"] for q in ("p16", "p50", "p84")]
                # log SFR: bagpipes' draws floored as sbipix's (same quantity); raw kept beside
                bq = [b[f"{p}_floored_{q}"] for q in ("p16", "p50", "p84")] if f"{p}_floored_p50" in b else raw
                half = max((bq[2] - bq[0]) / 2, 1e-9)
                truth = c.get(f"true_{p}", c.get(p))
                rows.append(dict(variant=variant, id=c["id"], kind=c["kind"], redshift=round(c["redshift"], 4),
                                 snr=round(c["snr"], 2), parameter=p, truth=truth,
                                 sbipix_p16=sq[0], sbipix_p50=sq[1], sbipix_p84=sq[2],
                                 bagpipes_p16=bq[0], bagpipes_p50=bq[1], bagpipes_p84=bq[2],
                                 bagpipes_unfloored_p16=raw[0], bagpipes_unfloored_p50=raw[1], bagpipes_unfloored_p84=raw[2],
                                 offset_sigma=(sq[1] - bq[1]) / half,
                                 width_ratio=(sq[2] - sq[0]) / max(bq[2] - bq[0], 1e-9),
                                 sbipix_time_s=float(s["time_s"]),
                                 sbipix_map_step_s=float(s["summary_ms_per_pixel"]) / 1e3 if s.get("summary_ms_per_pixel") else "",
                                 bagpipes_time_s=b["time_s"],
                                 bagpipes_n_eff=b["n_eff"], exact_lines_model_diff_rms_sigma=mdiff[c["id"]]))
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float):
                r[k] = float(f"{v:.6g}")
    write_csv(os.path.join(a.out, "compare.csv"), rows)

    def frac(sel):
        off = np.array([abs(r["offset_sigma"]) <= 0.2 for r in sel])
        rat = np.array([0.8 <= r["width_ratio"] <= 1.25 for r in sel])
        return dict(n=len(sel), within_0p2_sigma=round(float(off.mean()), 3) if len(sel) else None,
                    width_ratio_0p8_1p25=round(float(rat.mean()), 3) if len(sel) else None,
                    median_abs_offset_sigma=round(float(np.median([abs(r["offset_sigma"]) for r in sel])), 3) if sel else None,
                    median_offset_sigma=round(float(np.median([r["offset_sigma"] for r in sel])), 3) if sel else None,
                    median_width_ratio=round(float(np.median([r["width_ratio"] for r in sel])), 3) if sel else None)

    summ = {"seed": a.seed, "n_cases": len(bp), "pixels": sum(1 for c in cases if c["kind"] == "pixel" and c["id"] in bp),
            "galaxies": sum(1 for c in cases if c["kind"] == "galaxy" and c["id"] in bp),
            "snr_range": [round(min(c["snr"] for c in cases if c["id"] in bp), 1),
                          round(max(c["snr"] for c in cases if c["id"] in bp), 1)] if bp else None,
            "sbipix": subprocess.run([a.sbipix, "--version"], capture_output=True, text=True).stdout.strip(),
            "variants": {}}
    for variant in VARIANTS:
        vr = [r for r in rows if r["variant"] == variant]
        if not vr:
            continue
        v = {"all": frac(vr)}
        for kind in ("pixel", "galaxy"):
            v[kind] = frac([r for r in vr if r["kind"] == kind])
        v["per_parameter"] = {p: frac([r for r in vr if r["parameter"] == p]) for p in PARAMS}
        v["by_snr"] = {f"{lo}-{hi}": frac([r for r in vr if lo <= r["snr"] < hi])
                       for lo, hi in ((0, 20), (20, 50), (50, 100), (100, 1000))}
        t = {}
        for kind in ("pixel", "galaxy"):
            ids = {r["id"]: r for r in vr if r["kind"] == kind}
            if ids:
                ts = [r["sbipix_time_s"] for r in ids.values()]
                tb = [r["bagpipes_time_s"] for r in ids.values()]
                t[kind] = dict(sbipix_median_s=round(float(np.median(ts)), 2), sbipix_range_s=[round(min(ts), 2), round(max(ts), 2)],
                               sbipix_map_step_median_s=round(float(np.median([r["sbipix_map_step_s"] for r in ids.values()])), 2)
                               if kind == "pixel" else None,
                               bagpipes_median_s=round(float(np.median(tb)), 1), bagpipes_range_s=[round(min(tb), 1), round(max(tb), 1)])
        v["time_per_case"] = t
        summ["variants"][variant] = v
    # sbipix against itself (seed 1 vs 2, same model): its Monte-Carlo scatter in bagpipes' σ
    by = {(r["variant"], r["id"], r["parameter"]): r for r in rows}
    pairs = [(r, by[("bagpipes_grid_seed2", r["id"], r["parameter"])]) for r in rows
             if r["variant"] == PRIMARY and ("bagpipes_grid_seed2", r["id"], r["parameter"]) in by]
    if pairs:
        d = np.array([(r2["sbipix_p50"] - r1["sbipix_p50"]) / max((r1["bagpipes_p84"] - r1["bagpipes_p16"]) / 2, 1e-9)
                      for r1, r2 in pairs])
        w = np.array([(r2["sbipix_p84"] - r2["sbipix_p16"]) / max(r1["sbipix_p84"] - r1["sbipix_p16"], 1e-9) for r1, r2 in pairs])
        summ["sbipix_seed_scatter"] = dict(n=len(pairs), within_0p2_sigma=round(float(np.mean(np.abs(d) <= 0.2)), 3),
                                           width_ratio_0p8_1p25=round(float(np.mean((w >= 0.8) & (w <= 1.25))), 3),
                                           median_abs_offset_sigma=round(float(np.median(np.abs(d))), 3),
                                           max_abs_offset_sigma=round(float(np.max(np.abs(d))), 3))
    json.dump(summ, open(os.path.join(a.out, "summary.json"), "w"), indent=1)

    md = [f"# sbipix exact posteriors against bagpipes 1.3.6 + nautilus (seed {a.seed})", "",
          f"{summ['n_cases']} cases ({summ['pixels']} pixels, {summ['galaxies']} galaxies), S/N "
          f"{summ['snr_range'][0]}–{summ['snr_range'][1]}; {summ['sbipix']}. Fractions of (case, parameter) pairs "
          "with |Δ median| ≤ 0.2 σ_bagpipes and with width ratio (16–84 %, sbipix / bagpipes) in 0.8–1.25.", ""]
    for variant, v in summ["variants"].items():
        md += [f"## {variant}{' (primary)' if variant == PRIMARY else ''}", "",
               "| parameter | pairs | \\|Δ\\| ≤ 0.2σ | ratio 0.8–1.25 | median Δ/σ | median \\|Δ\\|/σ | median ratio |",
               "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, f in (list(v["per_parameter"].items()) + [(f"S/N {k}", f) for k, f in v["by_snr"].items()]
                        + [("pixels, all", v["pixel"]), ("galaxies, all", v["galaxy"]), ("**all**", v["all"])]):
            if f["n"]:
                md.append(f"| {name} | {f['n']} | {f['within_0p2_sigma']:.2f} | {f['width_ratio_0p8_1p25']:.2f} | "
                          f"{f['median_offset_sigma']:+.2f} | {f['median_abs_offset_sigma']:.2f} | {f['median_width_ratio']:.2f} |")
        for kind, t in v["time_per_case"].items():
            step = (f"; its mapping step {t['sbipix_map_step_median_s']} s" if t.get("sbipix_map_step_median_s") else "")
            md.append(f"\nWall time per {kind} case, one core (median, range): sbipix {t['sbipix_median_s']} s "
                      f"({t['sbipix_range_s'][0]}–{t['sbipix_range_s'][1]}; whole command per case{step}), bagpipes "
                      f"{t['bagpipes_median_s']} s ({t['bagpipes_range_s'][0]}–{t['bagpipes_range_s'][1]}).")
        md.append("")
    if "sbipix_seed_scatter" in summ:
        f = summ["sbipix_seed_scatter"]
        md += ["## sbipix against itself (seed 1 vs seed 2, bagpipes_grid)", "",
               f"{f['n']} pairs: |Δ median| ≤ 0.2 σ_bagpipes in {f['within_0p2_sigma']:.2f} (median |Δ|/σ "
               f"{f['median_abs_offset_sigma']:.2f}, max {f['max_abs_offset_sigma']:.2f}); width ratio in 0.8–1.25 in "
               f"{f['width_ratio_0p8_1p25']:.2f}.", ""]
    open(os.path.join(a.out, "summary.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


def refit_files(d):
    """(file name, result) of every refit with other sampler settings in WORK/bagpipes
    (`<id>_nlive<N>…json`; the prior-cut fits `_logz_` left out), by name."""
    for f in sorted(os.listdir(d)):
        if f.endswith(".json") and "_nlive" in f and "_logz_" not in f:
            yield f, json.load(open(os.path.join(d, f)))


def convergence(a):
    """The reference's own convergence: each case refitted with more live points
    (WORK/bagpipes/<id>_nlive<N>.json, `--bagpipes-case ID --n-live N`) against its 400-point fit
    and against sbipix (both from OUT/compare.csv, variants bagpipes_grid and its second seed), all in
    the 400-point fit's σ as compare.csv's offsets, and the criterion's fractions over those cases
    with either reference. Writes OUT/convergence.csv and prints a table."""
    path = os.path.join(a.out, "compare.csv")
    if not os.path.exists(path):
        sys.exit(f"{path}: not found (the compare stage writes it)")
    rows = list(csv.DictReader(open(path)))
    by = {(r["variant"], r["id"], r["parameter"]): r for r in rows}
    d = os.path.join(a.work, "bagpipes")
    out = []
    for f, b in refit_files(d):
        cid, n_live = b["id"], f.split("_nlive")[1][: -len(".json")]
        for p in PARAMS:
            r = by.get((PRIMARY, cid, p))
            if r is None:
                continue
            key = f"{p}_floored" if f"{p}_floored_p50" in b else p
            nq = [b[f"{key}_{q}"] for q in ("p16", "p50", "p84")]
            oq = [float(r[f"bagpipes_{q}"]) for q in ("p16", "p50", "p84")]
            half_o, half_n = max((oq[2] - oq[0]) / 2, 1e-9), max((nq[2] - nq[0]) / 2, 1e-9)
            row = dict(id=cid, snr=float(r["snr"]), parameter=p, n_live=n_live, time_s=round(b["time_s"], 1),
                       n_eff=round(b["n_eff"], 1), bagpipes400_p16=oq[0], bagpipes400_p50=oq[1], bagpipes400_p84=oq[2],
                       bagpipes_p16=nq[0], bagpipes_p50=nq[1], bagpipes_p84=nq[2],
                       bagpipes_shift_sigma400=(nq[1] - oq[1]) / half_o, bagpipes_width_ratio=(nq[2] - nq[0]) / (oq[2] - oq[0] or 1e-9))
            for v, tag in ((PRIMARY, ""), ("bagpipes_grid_seed2", "_seed2")):
                s = by.get((v, cid, p))
                if s is None:
                    continue
                sq = [float(s[f"sbipix_{q}"]) for q in ("p16", "p50", "p84")]
                row[f"offset_sigma400{tag}"] = float(s["offset_sigma"])
                row[f"width_ratio400{tag}"] = float(s["width_ratio"])
                row[f"offset_sigma{tag}"] = (sq[1] - nq[1]) / half_n
                row[f"width_ratio{tag}"] = (sq[2] - sq[0]) / max(nq[2] - nq[0], 1e-9)
            out.append({k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in row.items()})
    if not out:
        sys.exit(f"no <id>_nlive<N>.json in {d}")
    write_csv(os.path.join(a.out, "convergence.csv"), out)
    ok = lambda o, w: (abs(o) <= 0.2, 0.8 <= w <= 1.25)
    print("| case | S/N | n_live | parameter | bagpipes shift (σ₄₀₀) | width new/400 | offset σ, 400 → new | ratio, 400 → new |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in out:
        print(f"| {r['id']} | {r['snr']:.0f} | {r['n_live']} | {r['parameter']} | {r['bagpipes_shift_sigma400']:+.2f} | "
              f"{r['bagpipes_width_ratio']:.2f} | {r['offset_sigma400']:+.2f} → {r['offset_sigma']:+.2f} | "
              f"{r['width_ratio400']:.2f} → {r['width_ratio']:.2f} |")
    for tag in ("", "_seed2"):
        rs = [r for r in out if f"offset_sigma{tag}" in r]
        old = np.array([ok(r[f"offset_sigma400{tag}"], r[f"width_ratio400{tag}"]) for r in rs])
        new = np.array([ok(r[f"offset_sigma{tag}"], r[f"width_ratio{tag}"]) for r in rs])
        print(f"sbipix{tag or ' (seed 1)'}: {len(rs)} pairs; within 0.2 σ {old[:, 0].mean():.2f} → {new[:, 0].mean():.2f}, "
              f"width ratio in 0.8–1.25 {old[:, 1].mean():.2f} → {new[:, 1].mean():.2f} (400 live points → more)")
    criterion(a, rows, d, only400=True)
    criterion(a, rows, d)


def criterion(a, rows, d, only400=False):
    """The issue's criterion over every case of compare.csv, each against its best reference:
    bagpipes sampled harder (WORK/bagpipes/<id>_nlive*.json, the most live points) where it was
    refitted, else the 400-point fit; sbipix from WORK/sbipix_results.csv (a rerun with the
    current code) where it exists, else compare.csv's; every bagpipes_* variant found in either.
    Writes OUT/criterion.csv, prints the table."""
    refits = {}
    for f, b in refit_files(d):
        n = int(f.split("_nlive")[1].split("_")[0].split(".")[0])
        if b["id"] not in refits or n > refits[b["id"]][0]:
            refits[b["id"]] = (n, b)
    path = os.path.join(a.work, "sbipix_results.csv")
    current = {(r["variant"], r["id"]): r for r in csv.DictReader(open(path))} if os.path.exists(path) else {}
    # every variant rerun (sbipix_results.csv) or in compare.csv; bagpipes' 400-point quantiles
    # are the primary's rows (the same for every variant)
    variants = [v for v in VARIANTS if v.startswith("bagpipes_") and
                (any(k[0] == v for k in current) or any(r["variant"] == v for r in rows))]
    base = {(r["id"], r["parameter"]): r for r in rows if r["variant"] == PRIMARY}
    own = {(r["variant"], r["id"], r["parameter"]): r for r in rows}
    out = []
    for v, (cid, p) in ((v, k) for v in variants for k in base):
        r = dict(base[(cid, p)], variant=v)
        if (v, cid) not in current:
            if (v, cid, p) not in own:
                continue
            r = own[(v, cid, p)]
        if cid in refits and not only400:
            b = refits[cid][1]
            key = f"{p}_floored" if f"{p}_floored_p50" in b else p
            bq, ref = [b[f"{key}_{q}"] for q in ("p16", "p50", "p84")], f"nlive{refits[cid][0]}"
        else:
            bq, ref = [float(r[f"bagpipes_{q}"]) for q in ("p16", "p50", "p84")], "nlive400"
        s = current.get((r["variant"], cid))
        sq = [float(s[f"{p}_{q}"]) for q in ("p16", "p50", "p84")] if s else [float(r[f"sbipix_{q}"]) for q in ("p16", "p50", "p84")]
        half = max((bq[2] - bq[0]) / 2, 1e-9)
        out.append(dict(variant=r["variant"], id=cid, snr=float(r["snr"]), parameter=p, reference=ref,
                        sbipix="current" if s else "compare.csv", sbipix_p16=sq[0], sbipix_p50=sq[1], sbipix_p84=sq[2],
                        bagpipes_p16=bq[0], bagpipes_p50=bq[1], bagpipes_p84=bq[2], offset_sigma=(sq[1] - bq[1]) / half,
                        width_ratio=(sq[2] - sq[0]) / max(bq[2] - bq[0], 1e-9)))
    out = [{k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in r.items()} for r in out]
    write_csv(os.path.join(a.out, "criterion_400.csv" if only400 else "criterion.csv"), out)
    print("\nagainst the 400-point fits alone:" if only400 else "\nagainst the best reference of each case:")
    print("| variant | pairs | S/N | reference | \\|offset\\| ≤ 0.2 σ | ratio 0.8–1.25 | median offset / σ | median ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for v in variants:
        for lo, hi in ((0, 20), (20, 50), (50, 100), (100, 1000), (0, 1000)):
            sel = [r for r in out if r["variant"] == v and lo <= r["snr"] < hi]
            if not sel:
                continue
            refs = sorted({r["reference"] for r in sel})
            o = np.mean([abs(r["offset_sigma"]) <= 0.2 for r in sel])
            w = np.mean([0.8 <= r["width_ratio"] <= 1.25 for r in sel])
            print(f"| {v} | {len(sel)} | {lo}–{hi if hi < 1000 else '…'} | {', '.join(refs)} | {o:.2f} | {w:.2f} | "
                  f"{np.median([r['offset_sigma'] for r in sel]):+.2f} | {np.median([r['width_ratio'] for r in sel]):.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sbipix")
    ap.add_argument("filters")
    ap.add_argument("out")
    ap.add_argument("--work", default="/tmp/sbipix-compare-exact")
    ap.add_argument("--pixels", type=int, default=32)
    ap.add_argument("--galaxies", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--stage", default="all", choices=["all", "make", "sbipix", "bagpipes", "compare", "convergence"])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="sbipix stage: these variants (comma-separated)")
    ap.add_argument("--only", default="", help="bagpipes stage: only these case ids (comma-separated)")
    ap.add_argument("--bagpipes-case", default=None,
                    help="fit this one case with bagpipes (what the bagpipes stage runs per case)")
    ap.add_argument("--n-live", type=int, default=400,
                    help="with --bagpipes-case: nautilus' live points (400 made compare.csv); other settings write <id>_nlive<N>[_neff<M>][_discard].json")
    ap.add_argument("--n-eff", type=int, default=0,
                    help="with --bagpipes-case: nautilus' target effective sample size (bagpipes passes 0: no target)")
    ap.add_argument("--discard-exploration", action="store_true",
                    help="with --bagpipes-case: nautilus drops its exploration-phase points (its advice for accurate posteriors)")
    ap.add_argument("--logz-max", type=float, default=None,
                    help="with --bagpipes-case: restrict the metallicity prior to log Z/Z☉ < this (a region's evidence)")
    a = ap.parse_args()
    a.sbipix, a.filters = os.path.abspath(a.sbipix), os.path.abspath(a.filters)
    a.out, a.work = os.path.abspath(a.out), os.path.abspath(a.work)
    a.variants = [v for v in a.variants.split(",") if v]
    assert all(v in VARIANTS for v in a.variants), f"variants: {', '.join(VARIANTS)}"
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    filters = read_filter_list(a.filters)
    bands = band_names(filters)
    if a.bagpipes_case:
        return bagpipes_case(a, a.bagpipes_case, filters, bands)
    if a.stage == "convergence":
        return convergence(a)
    if a.stage in ("all", "make"):
        os.chdir(a.work)
        cases = make_cases(a, filters, bands)
        write_csv(os.path.join(a.out, "cases.csv"), cases)
        print(f"{len(cases)} cases written", flush=True)
    cases = load_cases(a.out)
    if a.stage in ("all", "sbipix"):
        run_sbipix(a, cases, filters, bands)
    if a.stage in ("all", "bagpipes"):
        run_bagpipes(a, cases)
    if a.stage in ("all", "compare"):
        add_floored(a, cases)
        compare(a, cases, bands)


if __name__ == "__main__":
    main()
