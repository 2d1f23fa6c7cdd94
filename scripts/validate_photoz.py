#!/usr/bin/env python3
"""Photometric redshifts (docs/photo-z.md): the 543 JADES PRISM galaxies against their
spectroscopic redshifts, and simulated galaxies over 0 < z < 12 with 68 % coverage.

Needs numpy and matplotlib (a throw-away venv) and a built `sbipix` (target/release/sbipix).
Writes docs/data/photoz/ (tables, metrics.json) and docs/photoz-prism.png.

    python scripts/validate_photoz.py [--seed 271828]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBIPIX = os.path.join(ROOT, "target", "release", "sbipix")
PRISM = os.path.join(ROOT, "..", "shared", "real_data", "jades_prism_synthphot", "PRISM_5.5z6.5_JOF_v11_synthphot.txt")
OUT = os.path.join(ROOT, "docs", "data", "photoz")
BANDS11 = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F444W"]


# the model the fits use: `sbipix2025` made the numbers in docs/photo-z.md (`--model`)
MODEL = ["--model", "sbipix2025"]


def run(args):
    if args and args[0] == "fit":
        args = ["fit"] + MODEL + args[1:]
    r = subprocess.run([SBIPIX] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    return r.stderr


def metrics(z_true, rows):
    zp = np.array([float(r["z_p50"]) for r in rows])
    lo = np.array([float(r["z_p16"]) for r in rows])
    hi = np.array([float(r["z_p84"]) for r in rows])
    dz = (zp - z_true) / (1 + z_true)
    n = len(dz)
    cov = float(np.mean((z_true >= lo) & (z_true <= hi)))
    return {
        "n": n,
        "bias": float(np.median(dz)),
        "sigma_nmad": float(1.4826 * np.median(np.abs(dz - np.median(dz)))),
        "outlier_fraction": float(np.mean(np.abs(dz) > 0.15)),
        "coverage_68": cov,
        "coverage_68_binomial_3sigma": [0.68 - 3 * (0.68 * 0.32 / n) ** 0.5, 0.68 + 3 * (0.68 * 0.32 / n) ** 0.5],
        "median_flagged": int(sum(1 for r in rows if r["z_flags"])),
    }


def prism_quality():
    """Each PRISM galaxy's data quality, from the table's noiseless synthesised fluxes: `uncovered`
    when a band's flux is exactly 0 (the spectrum does not cover it: the synthesised flux is then
    0 with the band's error floor, a false measurement of no light), else `broken` when a band's
    flux lies more than 3 errors below zero (no source has negative flux: a spectrum whose
    background went wrong), else `clean`. Decided from the data alone, before any fit."""
    lines = [l.split() for l in open(PRISM) if l.strip()]
    col = {h: i for i, h in enumerate(lines[0])}
    quality = {}
    for p in lines[1:]:
        f = [float(p[col[b + "_Jy"]]) for b in BANDS11]
        e = [float(p[col[b + "_Jy_errs"]]) for b in BANDS11]
        if any(v == 0 for v in f):
            quality[p[0]] = "uncovered"
        elif any(v < -3 * s for v, s in zip(f, e)):
            quality[p[0]] = "broken"
        else:
            quality[p[0]] = "clean"
    return quality


def residuals_at_zspec(tmp, ids, quality):
    """`sbipix fit` at the spectroscopic redshift (exact posteriors, the noiseless fluxes) of the
    clean galaxies, outliers and the rest apart: the median posterior-predictive residual per band."""
    lines = [l for l in open(PRISM) if l.strip()]
    out = {}
    for name, keep in ids.items():
        cat = os.path.join(tmp, f"zspec_{name}.txt")
        with open(cat, "w") as f:
            f.write(lines[0])
            f.writelines(l for l in lines[1:] if l.split()[0] in keep)
        log = run(["fit", "--catalog", cat, "--flux-columns", "{band}_Jy", "--err-columns", "{band}_Jy_errs", "--unit", "Jy",
                   "--id-column", "ID", "--redshift-column", "z", "--out", os.path.join(tmp, f"zspec_{name}.csv"), "--overwrite"])
        res = [l.split(":", 1)[1].strip() for l in log.splitlines() if "median residual per band" in l]
        chi = [l.split("median reduced χ²")[1].split(",")[0].strip() for l in log.splitlines() if "median reduced χ²" in l]
        out[name] = {"n": len(keep), "median_reduced_chi2": float(chi[0]) if chi else None, "median_residual_sigma": res[0] if res else None}
    return out


# JADES' deepest NIRSpec programmes in the table (GOODS-S Deep and Ultra Deep)
DEEP = ["gds-deep-v3", "gds-udeep-v3"]


def reduction_pairs(files, fit, spec):
    """The table's rows that are two reductions of the same exposures (`<prog>-nod-v3_…` beside
    `<prog>-v3_…`, RUBIES): how far their synthesised ("noiseless") fluxes differ per band (NMAD of
    ln f₁/f₂ over the pairs whose fluxes are not identical), and how often the two photometric
    redshifts (`fit`, from the noiseless fluxes) disagree on being an outlier."""
    lines = [l.split() for l in open(PRISM) if l.strip()]
    col = {h: i for i, h in enumerate(lines[0])}
    by_file = {p[2]: p for p in lines[1:]}
    ratios, flips, n_same = [], 0, 0
    for name, p in by_file.items():
        q = by_file.get(name.replace("-nod-v3", "-v3")) if "-nod-v3" in name else None
        if q is None:
            continue
        fp = np.array([float(p[col[b + "_Jy"]]) for b in BANDS11])
        fq = np.array([float(q[col[b + "_Jy"]]) for b in BANDS11])
        if np.allclose(fp, fq, rtol=1e-6):
            n_same += 1
            continue
        ok = (fp > 0) & (fq > 0)
        ratios.append(np.where(ok, np.log(np.where(ok, fp, 1) / np.where(ok, fq, 1)), np.nan))
        out = [abs(float(fit[x[0]]["z_p50"]) - spec[x[0]]) / (1 + spec[x[0]]) > 0.15 for x in (p, q)]
        flips += out[0] != out[1]
    r = np.array(ratios)
    nmad = {b: float(1.4826 * np.nanmedian(np.abs(r[:, i] - np.nanmedian(r[:, i])))) for i, b in enumerate(BANDS11)}
    return {"pairs_identical": n_same, "pairs_differing": len(ratios), "nmad_ln_ratio": nmad,
            "outlier_status_differs": flips}


def prism(tmp):
    out = os.path.join(tmp, "prism.csv")
    log = run(["fit", "--catalog", PRISM, "--flux-columns", "{band}_Jy_scattered", "--err-columns", "{band}_Jy_errs",
               "--unit", "Jy", "--id-column", "ID", "--photo-z-only", "--out", out, "--overwrite"])
    rows = list(csv.DictReader(open(out)))
    spec = {}
    for line in open(PRISM):
        p = line.split()
        if p[0] != "ID":
            spec[p[0]] = float(p[1])
    zs = np.array([spec[r["id"]] for r in rows])
    m = metrics(zs, rows)
    m["timing_log"] = [l for l in log.splitlines() if "p(z) of" in l]
    # the same by data quality, and the clean galaxies' noiseless fluxes (is it the noise?)
    quality = prism_quality()
    m["by_quality"] = {}
    for q in ["clean", "uncovered", "broken"]:
        sel = [i for i, r in enumerate(rows) if quality[r["id"]] == q]
        m["by_quality"][q] = metrics(zs[sel], [rows[i] for i in sel])
    out_nl = os.path.join(tmp, "prism_noiseless.csv")
    run(["fit", "--catalog", PRISM, "--flux-columns", "{band}_Jy", "--err-columns", "{band}_Jy_errs",
         "--unit", "Jy", "--id-column", "ID", "--photo-z-only", "--out", out_nl, "--overwrite"])
    nl = list(csv.DictReader(open(out_nl)))
    sel = [i for i, r in enumerate(nl) if quality[r["id"]] == "clean"]
    m["clean_noiseless_fluxes"] = metrics(np.array([spec[nl[i]["id"]] for i in sel]), [nl[i] for i in sel])
    # Why the PRISM set fails (docs/photo-z.md). The spectrum each row was synthesised from: the
    # programme, and two reductions of the same RUBIES exposures (`…-nod-v3` beside `…-v3`).
    files = {l.split()[0]: l.split()[2] for l in open(PRISM) if l.strip() and not l.startswith("ID")}
    deep = [i for i, r in enumerate(rows) if quality[r["id"]] == "clean" and files[r["id"]].split("_prism")[0] in DEEP]
    m["clean_deep_spectra"] = {"programmes": DEEP, "scattered": metrics(zs[deep], [rows[i] for i in deep]),
                               "noiseless": metrics(zs[deep], [nl[i] for i in deep])}
    m["reduction_pairs"] = reduction_pairs(files, {r["id"]: r for r in nl}, spec)
    out_sys = os.path.join(tmp, "prism_sys.csv")
    run(["fit", "--catalog", PRISM, "--flux-columns", "{band}_Jy_scattered", "--err-columns", "{band}_Jy_errs", "--unit",
         "Jy", "--id-column", "ID", "--photo-z-only", "--sys-err", "0.2", "--out", out_sys, "--overwrite"])
    sy = list(csv.DictReader(open(out_sys)))
    sel = [i for i, r in enumerate(sy) if quality[r["id"]] == "clean"]
    m["sys_err_0.2"] = {"all": metrics(zs, sy), "clean": metrics(zs[sel], [sy[i] for i in sel])}
    # where the model fails the clean outliers at their spectroscopic redshift
    clean = [r for r in nl if quality[r["id"]] == "clean"]
    is_out = {r["id"]: abs(float(r["z_p50"]) - spec[r["id"]]) / (1 + spec[r["id"]]) > 0.15 for r in clean}
    m["clean_noiseless_at_zspec"] = residuals_at_zspec(
        tmp, {"outliers": {i for i, o in is_out.items() if o}, "rest": {i for i, o in is_out.items() if not o}}, quality)
    with open(os.path.join(OUT, "prism.csv" if MODEL[1] == "sbipix2025" else f"prism_{os.path.basename(os.path.normpath(MODEL[1]))}.csv"), "w") as f:
        # our results only: the spectroscopic redshifts stay in ../shared (third-party data)
        f.write("id,z_p16,z_p50,z_p84,z_mode,z_odds,z_second,z_second_prob,z_flags\n")
        for r in rows:
            f.write(",".join([r["id"]] + [r[k] for k in ["z_p16", "z_p50", "z_p84", "z_mode", "z_odds", "z_second", "z_second_prob", "z_flags"]]) + "\n")
    return zs, rows, m


def simulations(tmp, seed, bands):
    """Galaxies from the model's prior over 0.05 < z < 12 (10^8.5–10^11 M☉ formed), 10 % errors."""
    rng = np.random.default_rng(seed)
    n = 400
    h0, om = 70.0, 0.3
    ol = 1 - om
    t_univ = lambda z: 2 / (3 * np.sqrt(ol)) * 977.8 / h0 * np.arcsinh(np.sqrt(ol / om) * (1 + z) ** -1.5)
    z = rng.uniform(0.05, 12.0, n)
    age = np.clip((1 - rng.uniform(0, 1, n)) * t_univ(z), 1e-5, None)
    params = os.path.join(tmp, "params.csv")
    with open(params, "w") as f:
        f.write("id,redshift,log_mass_formed,age_gyr,tau_gyr,logzsol,av_mag\n")
        for i in range(n):
            f.write(f"{i + 1},{z[i]},{rng.uniform(8.5, 11)},{age[i]},{10 ** rng.uniform(-2, 2)},{rng.uniform(-2.27, 0.4)},{rng.uniform(0, 4.3)}\n")
    phot = os.path.join(tmp, "phot.csv")
    run(["photometry", "--params", params, "--out", phot])
    rows = list(csv.DictReader(open(phot)))
    cat = os.path.join(tmp, "cat.csv")
    with open(cat, "w") as f:
        f.write("id," + ",".join(f"flux_ujy_{b},err_ujy_{b}" for b in bands) + "\n")
        for r in rows:
            vals = []
            for b in bands:
                fl = float(r["flux_ujy_" + b])
                e = 0.1 * abs(fl) + 1e-6
                vals += [fl + rng.normal() * e, e]
            f.write(r["id"] + "," + ",".join(f"{v:.6e}" for v in vals) + "\n")
    out = os.path.join(tmp, "sim.csv")
    run(["fit", "--catalog", cat, "--photo-z-only", "--z-max", "12", "--out", out, "--overwrite"])
    fit = list(csv.DictReader(open(out)))
    return z, fit, metrics(z, fit)


def figure(zs, rows, sim, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4.6))
    zp = np.array([float(r["z_p50"]) for r in rows])
    lo = np.array([float(r["z_p16"]) for r in rows])
    hi = np.array([float(r["z_p84"]) for r in rows])
    ax[0].errorbar(zs, zp, yerr=[zp - lo, hi - zp], fmt="o", ms=2.5, lw=0.5, alpha=0.6)
    x = np.linspace(5.4, 6.7, 10)
    ax[0].plot(x, x, "k-", lw=0.8)
    ax[0].fill_between(x, x - 0.15 * (1 + x), x + 0.15 * (1 + x), color="0.85", zorder=0)
    ax[0].set_xlabel("spectroscopic z")
    ax[0].set_ylabel("photometric z (median, 16–84 %)")
    ax[0].set_title("543 JADES PRISM galaxies, 11 NIRCam bands")
    ax[0].set_xlim(5.5, 6.6)
    ax[0].set_ylim(0, 7.6)
    zt, fit = sim
    zq = np.array([float(r["z_p50"]) for r in fit])
    ax[1].scatter(zt, zq, s=4)
    x = np.linspace(0, 12, 10)
    ax[1].plot(x, x, "k-", lw=0.8)
    ax[1].set_xlabel("true z")
    ax[1].set_ylabel("photometric z (median)")
    ax[1].set_title("simulated galaxies, 19 bands, 10 % errors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=271828)
    ap.add_argument("--model", default="sbipix2025", help="model of the fits (docs/photo-z.md: sbipix2025)")
    a = ap.parse_args()
    MODEL[1] = a.model
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        zs, rows, mp = prism(tmp)
        all19 = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W",
                 "F460M", "F480M", "F435W", "F606W", "F775W", "F814W", "F850LP"]
        z19, fit19, m19 = simulations(tmp, a.seed, all19)
        z11, fit11, m11 = simulations(tmp, a.seed + 1, BANDS11)
    metrics_all = {"seed": a.seed, "model": a.model, "prism": mp, "simulated_19_bands": m19, "simulated_11_bands": m11}
    # the documented model's files keep their names; another model's go beside them
    suffix = "" if a.model == "sbipix2025" else "_" + os.path.basename(os.path.normpath(a.model))
    with open(os.path.join(OUT, f"metrics{suffix}.json"), "w") as f:
        json.dump(metrics_all, f, indent=1)
    if not suffix:
        figure(zs, rows, (z19, fit19), os.path.join(ROOT, "docs", "photoz-prism.png"))
    print(json.dumps(metrics_all, indent=1))


if __name__ == "__main__":
    main()
