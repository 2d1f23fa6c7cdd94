#!/usr/bin/env python3
"""Photometric redshifts of galaxies made by bagpipes 1.3.6 (an independent code) with priors
that are not sbipix's: `sbipix fit --photo-z-only` against the true redshifts, per S/N bin, with
the 68 % intervals' coverage and their binomial range (docs/photo-z.md, *Galaxies made by
bagpipes*).

bagpipes is GPL-3 and not part of sbipix: run this with the Python of a throw-away virtual
environment (`python3 -m venv /tmp/bp && /tmp/bp/bin/pip install bagpipes==1.3.6 astropy`);
nothing of it is committed.

Usage:
  python bagpipes_photoz.py SBIPIX FILTER_LIST OUT_DIR [--seed 20261232] [--n 400] [--work DIR]
         [--model default] [--stage all|make|fit]

FILTER_LIST is sbipix's filters_jades_no_wfc.dat (paths relative to it); the galaxies are
observed in the 11 NIRCam bands of the JADES PRISM set (docs/photo-z.md).

Three sets of N galaxies each, drawn by one generator seeded with SEED (never used to choose or
tune anything):
* `broad`: 0.2 < z < 7 uniform; a delayed-τ history with the age log-uniform from 30 Myr to the
  age of the universe and τ log-uniform 0.03–10 Gyr; Z log-uniform 0.02–2 Z☉; Calzetti A_V
  |N(0, 0.6)| ≤ 3 mag; log U uniform −3…−1 (sbipix's templates fix it at −2); log M formed
  uniform 8.5–11; half of them with a burst 3–30 Myr old holding 10^−2…10^−0.5 of the mass.
* `z6`: 5.6 < z < 6.5 uniform (the PRISM set's range): age log-uniform 10 Myr – the age of the
  universe, τ log-uniform 0.03–3 Gyr, Z 0.02–0.5 Z☉, A_V |N(0, 0.3)|, log U −3…−1, log M formed
  8–10, the same bursts.
* `z6_young`: the same redshifts, and galaxies like most of the PRISM set's (young, flat, no
  Balmer break): the onset log-uniform 10–150 Myr ago, τ log-uniform 0.3–3 Gyr (a constant or
  rising SFR), Z 0.02–0.3 Z☉, A_V |N(0, 0.2)|, log U −3…−1, log M formed 7.5–9.5, the same bursts.

Errors: per galaxy a S/N drawn log-uniform 5–50, σ_b = max(f_b, 0.1 · median_b f) / S/N (errors
proportional to the flux, as in the PRISM set, with a floor where a band drops out), the flux
scattered by σ_b. Metrics of Δz/(1+z) (z = p(z)'s median): σ_NMAD, bias, outliers
(|Δz|/(1+z) > 0.15), coverage of [z_p16, z_p84] with its exact 99 % binomial range, per S/N bin 5–10, 10–20, 20–50 and all.
Then the `z6_young` galaxies observed as the JADES PRISM table was made (`prism_table_like`: sets
`z6_young_prism_table` and `…_noiseless`, drawn with SEED + 1, written to
OUT_DIR/catalogue_prism_table.csv), and the latter's photo-z outliers and the rest fitted at their
true redshifts (`at_z_true`: the median residual per band, as for the real galaxies at z_spec).

Writes OUT_DIR/catalogue.csv (the photometry fitted, with the true z and the S/N beside it: the
CLI test `photometric_redshifts_of_bagpipes_galaxies` reads it), OUT_DIR/metrics.json and
OUT_DIR/galaxies.csv (all truths, the fit's redshifts).
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bagpipes_depths import band_names, read_filter_list  # noqa: E402

BANDS11 = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F444W"]
SNR_BINS = [(5, 10), (10, 20), (20, 50)]
SETS = {  # name → z range, age floor (Gyr), log τ range, log Z range, A_V scale, log M range
    "broad": ((0.2, 7.0), 0.03, (-1.5, 1.0), (np.log10(0.02), np.log10(2.0)), 0.6, (8.5, 11.0)),
    "z6": ((5.6, 6.5), 0.01, (-1.5, np.log10(3.0)), (np.log10(0.02), np.log10(0.5)), 0.3, (8.0, 10.0)),
    # drawn after the other two, so adding it left their galaxies as they were
    "z6_young": ((5.6, 6.5), 0.01, (np.log10(0.3), np.log10(3.0)), (np.log10(0.02), np.log10(0.3)), 0.2, (7.5, 9.5)),
}
AGE_MAX_GYR = {"z6_young": 0.15}  # the set's oldest onset; the others reach the age of the universe


def make(a, filters):
    import bagpipes as pipes
    from bagpipes import utils

    rng = np.random.default_rng(a.seed)
    rows = []
    models = {}
    for name, ((z0, z1), age0, (lt0, lt1), (lz0, lz1), av_scale, (lm0, lm1)) in SETS.items():
        for i in range(a.n):
            z = rng.uniform(z0, z1)
            t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
            age = 10 ** rng.uniform(np.log10(age0), np.log10(min(t_univ, AGE_MAX_GYR.get(name, t_univ))))
            tau = 10 ** rng.uniform(lt0, lt1)
            met = 10 ** rng.uniform(lz0, lz1)
            av = float(min(abs(rng.normal(0, av_scale)), 3.0))
            logu = rng.uniform(-3, -1)
            lm = rng.uniform(lm0, lm1)
            burst = rng.uniform() < 0.5
            comp = {"redshift": z, "delayed": {"age": age, "tau": tau, "massformed": lm, "metallicity": met},
                    "dust": {"type": "Calzetti", "Av": av}, "nebular": {"logU": logu}}
            frac = 0.0
            if burst:
                frac = 10 ** rng.uniform(-2, -0.5)
                comp["burst"] = {"age": 10 ** rng.uniform(np.log10(0.003), np.log10(0.03)),
                                 "massformed": lm + np.log10(frac), "metallicity": met}
            if burst not in models:
                models[burst] = pipes.model_galaxy(comp, filt_list=filters, phot_units="mujy")
            m = models[burst]
            m.update(comp)
            f = np.array(m.photometry)
            snr = 10 ** rng.uniform(np.log10(5), np.log10(50))
            sig = np.maximum(f, 0.1 * np.median(f)) / snr
            obs = f + rng.normal(size=f.size) * sig
            rows.append({"id": f"{name}_{i + 1}", "set": name, "z": z, "snr": snr, "age_gyr": age, "tau_gyr": tau,
                         "metallicity_zsun": met, "av_mag": av, "logu": logu, "log_mass_formed": lm,
                         "burst_fraction": frac, "flux": obs, "err": sig, "flux_true": f})
        print(f"bagpipes: {name} made", flush=True)
    return rows


# The JADES PRISM table's photometry, imitated (docs/photo-z.md, *Why the PRISM set fails*): a
# band's "noiseless" flux there is synthesised from a NIRSpec spectrum and carries the spectrum's
# own noise and reduction error — two reductions of the same RUBIES exposures differ by 25–33 %
# (NMAD) per band, ≈ 20 % each — while its error is 10 % of that flux; the `_scattered` flux adds
# one such error. Here: f_spec = f (1 + SPECTRAL_NOISE n₁), σ = 0.1 max(f_spec, 0.1 median f),
# scattered = f_spec + σ n₂ (sets `<set>_prism_table`), or f_spec itself with that σ
# (`<set>_prism_table_noiseless`), drawn with SEED + 1.
SPECTRAL_NOISE = 0.2
PRISM_TABLE_SETS = ["z6_young"]


def prism_table_like(rows, seed):
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        if r["set"] not in PRISM_TABLE_SETS:
            continue
        f = np.array(r["flux_true"])
        fs = f * (1 + SPECTRAL_NOISE * rng.normal(size=f.size))
        sig = 0.1 * np.maximum(np.abs(fs), 0.1 * np.median(f))
        scattered = fs + sig * rng.normal(size=f.size)
        for suffix, flux in (("_prism_table", scattered), ("_prism_table_noiseless", fs)):
            out.append({**r, "id": r["id"] + suffix, "set": r["set"] + suffix, "snr": 10.0, "flux": list(flux),
                        "err": list(sig)})
    return out


def at_z_true(a, rows):
    """`sbipix fit` (exact posteriors) at the true redshifts of `rows`, the photo-z outliers and
    the rest apart: the median reduced χ² and residual per band its posterior-predictive check
    prints — what docs/photo-z.md compares with the real PRISM outliers' at z_spec."""
    out = {}
    for name, keep in (("outliers", True), ("rest", False)):
        sel = [x for x in rows if (abs(x["z_p50"] - x["z"]) / (1 + x["z"]) > 0.15) == keep]
        cat = os.path.join(a.work, f"at_z_true_{name}.csv")
        write_catalogue(cat, sel, BANDS11, redshift=True)
        r = subprocess.run([a.sbipix, "fit", "--model", a.model, "--catalog", cat, "--out", cat + ".fit.csv",
                            "--overwrite"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        res = [l.split(":", 1)[1].strip() for l in r.stderr.splitlines() if "median residual per band" in l]
        chi = [l.split("median reduced χ²")[1].split(",")[0].strip() for l in r.stderr.splitlines() if "median reduced χ²" in l]
        out[name] = {"n": len(sel), "median_reduced_chi2": float(chi[0]) if chi else None,
                     "median_residual_sigma": res[0] if res else None}
    return out


def write_catalogue(path, rows, bands, redshift=False):
    with open(path, "w") as f:
        f.write("id,set,z_true,snr," + ",".join(f"flux_ujy_{b},err_ujy_{b}" for b in bands) + (",redshift" if redshift else "") + "\n")
        for r in rows:
            vals = [v for fe in zip(r["flux"], r["err"]) for v in fe]
            f.write(f"{r['id']},{r['set']},{r['z']:.6f},{r['snr']:.4f}," + ",".join(f"{v:.6e}" for v in vals)
                    + (f",{r['z']:.6f}" if redshift else "") + "\n")


def summary(z, zp, lo, hi):
    dz = (zp - z) / (1 + z)
    n = len(dz)
    if n == 0:
        return {"n": 0}
    from scipy.stats import binom

    cov = float(np.mean((z >= lo) & (z <= hi)))
    return {"n": n, "sigma_nmad": float(1.4826 * np.median(np.abs(dz - np.median(dz)))), "bias": float(np.median(dz)),
            "outlier_fraction": float(np.mean(np.abs(dz) > 0.15)), "outliers": int(np.sum(np.abs(dz) > 0.15)),
            "coverage_68": cov,
            # where the coverage of n calibrated intervals lies with probability 0.99 (exact binomial)
            "coverage_68_binomial_99": [float(binom.ppf(0.005, n, 0.68) / n), float(binom.ppf(0.995, n, 0.68) / n)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sbipix")
    ap.add_argument("filter_list")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261232)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--work", default=None)
    ap.add_argument("--model", default="default")
    ap.add_argument("--stage", default="all", choices=["all", "make", "fit"])
    a = ap.parse_args()
    a.work = a.work or os.path.join(a.out, "work")
    os.makedirs(a.work, exist_ok=True)
    filters = read_filter_list(a.filter_list)
    names = band_names(filters)
    filters = [filters[names.index(b)] for b in BANDS11]
    store = os.path.join(a.work, "galaxies.json")
    if a.stage in ("all", "make"):
        rows = make(a, filters)
        with open(store, "w") as f:
            json.dump([{**r, **{k: list(map(float, r[k])) for k in ("flux", "err", "flux_true")}} for r in rows], f)
    if a.stage == "make":
        return
    rows = json.load(open(store))
    os.makedirs(a.out, exist_ok=True)
    cat = os.path.join(a.out, "catalogue.csv")  # what sbipix sees (and the truths z_true, snr, which it ignores)
    write_catalogue(cat, rows, BANDS11)
    rows += prism_table_like(rows, a.seed + 1)
    write_catalogue(os.path.join(a.out, "catalogue_prism_table.csv"), [r for r in rows if r["set"] not in SETS], BANDS11)
    for path in (cat, os.path.join(a.out, "catalogue_prism_table.csv")):
        fit = os.path.join(a.work, "fit.csv")
        r = subprocess.run([a.sbipix, "fit", "--model", a.model, "--catalog", path, "--photo-z-only", "--out", fit,
                            "--overwrite"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        for f in csv.DictReader(open(fit)):
            g = next(x for x in rows if x["id"] == f["id"])
            g.update({k: float(f[k]) for k in ("z_p16", "z_p50", "z_p84")}, z_flags=f["z_flags"])
    metrics = {"seed": a.seed, "model": a.model, "n_per_set": a.n, "bands": BANDS11,
               "prism_table_seed": a.seed + 1, "prism_table_spectral_noise": SPECTRAL_NOISE}
    for name in list(SETS) + [s + "_prism_table" for s in PRISM_TABLE_SETS] + [s + "_prism_table_noiseless" for s in PRISM_TABLE_SETS]:
        g = [x for x in rows if x["set"] == name]
        arr = lambda k, sel: np.array([x[k] for x in sel])  # noqa: E731
        out = {"all": summary(arr("z", g), arr("z_p50", g), arr("z_p16", g), arr("z_p84", g))}
        for s0, s1 in SNR_BINS:
            sel = [x for x in g if s0 <= x["snr"] < s1]
            out[f"snr_{s0}_{s1}"] = summary(arr("z", sel), arr("z_p50", sel), arr("z_p16", sel), arr("z_p84", sel))
        metrics[name] = out
    metrics["at_z_true"] = at_z_true(a, [x for x in rows if x["set"] == PRISM_TABLE_SETS[0] + "_prism_table_noiseless"])
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    keys = ["id", "set", "z", "snr", "age_gyr", "tau_gyr", "metallicity_zsun", "av_mag", "logu", "log_mass_formed",
            "burst_fraction", "z_p16", "z_p50", "z_p84", "z_flags"]
    with open(os.path.join(a.out, "galaxies.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for x in rows:
            w.writerow([f"{x[k]:.5g}" if isinstance(x[k], float) else x[k] for k in keys])
    figure(rows, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "photoz-bagpipes.png"))
    print(json.dumps(metrics, indent=1))


def figure(rows, path):
    """z_phot against z_true: the young z ≈ 6 galaxies with true errors, the same galaxies with the
    PRISM table's noise, and the real PRISM galaxies (docs/data/photoz/prism_default.csv against
    the table's spectroscopic redshifts in ../shared; the panel is left out without them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    here = os.path.dirname(os.path.abspath(__file__))
    prism = os.path.join(here, "..", "..", "shared", "real_data", "jades_prism_synthphot", "PRISM_5.5z6.5_JOF_v11_synthphot.txt")
    fit = os.path.join(here, "..", "docs", "data", "photoz", "prism_default.csv")
    panels = [("bagpipes z6_young, true errors (S/N 5–50)", [x for x in rows if x["set"] == "z6_young"]),
              ("the same galaxies, the PRISM table's noise", [x for x in rows if x["set"] == "z6_young_prism_table"])]
    if os.path.exists(prism) and os.path.exists(fit):
        spec = {l.split()[0]: float(l.split()[1]) for l in open(prism) if l.strip() and not l.startswith("ID")}
        real = [{"z": spec[r["id"]], "z_p50": float(r["z_p50"])} for r in csv.DictReader(open(fit))]
        panels.append(("543 real JADES PRISM galaxies (scattered)", real))
    fig, ax = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), sharey=True)
    for a, (title, g) in zip(ax, panels):
        z = np.array([x["z"] for x in g])
        zp = np.array([x["z_p50"] for x in g])
        out = np.abs(zp - z) / (1 + z) > 0.15
        a.scatter(z[~out], zp[~out], s=5, color="C0")
        a.scatter(z[out], zp[out], s=5, color="C3")
        x = np.linspace(5.5, 6.6, 10)
        a.plot(x, x, "k-", lw=0.8)
        a.fill_between(x, x - 0.15 * (1 + x), x + 0.15 * (1 + x), color="0.88", zorder=0)
        a.set_xlim(5.5, 6.6)
        a.set_ylim(0, 7.6)
        a.set_title(f"{title}\n{100 * out.mean():.1f} % outliers (red)", fontsize=9)
        a.set_xlabel("true / spectroscopic z")
    ax[0].set_ylabel("photometric z (p(z) median)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
