#!/usr/bin/env python3
"""Resolved galaxies made by bagpipes 1.3.6, observed at other depths and band sets, mapped by a
sbipix model's network alone (`sbipix map --fast`) — issue 18's check of a default network.

bagpipes is GPL-3 and not part of sbipix: run this with the Python of a throw-away virtual
environment (`python3 -m venv /tmp/bp && /tmp/bp/bin/pip install bagpipes==1.3.6 astropy`);
nothing of it is committed.

Usage:
  python bagpipes_depths.py SBIPIX FILTER_LIST OUT_DIR [--models default,PATH,...] [--seed 20261203]
         [--work DIR] [--size 20] [--stage all|make|map] [--setups A,B] [--exact [--sys-err 0]]

FILTER_LIST is SBIPIX's filters_jades_no_wfc.dat (the 19 JADES bands; paths relative to it):
bagpipes makes the photometry through these curves; sbipix maps it with the model's own (as a
user's data would be).

The galaxies (one generator seeded with SEED; `make_galaxies`): six SIZE × SIZE-pixel discs at
z = 0.7, 1.0, 2.3, 3.0, 4.33 and 6.0 (an old disc with a quenched centre, a star-forming disc, a
young dusty one, an El-Gordo-like dusty one at 4.33, a young metal-poor one), delayed-τ histories,
Calzetti dust (η = 1), nebular emission at log U = −2, bagpipes' DL07 dust emission, Inoue 2014
IGM. Per pixel the mass formed falls exponentially from the centre (log M formed 7.0–7.8 in the
centre, 1.8 dex lower at the edge: the S/N of real JADES maps, a median ≈ 10–30 over the pixels
above 5 at JADES depth) and age, A_V, τ
and Z vary smoothly with radius plus a per-pixel scatter; the truths are bagpipes' own living
stellar mass, SFR and mass-weighted age.

The observations (SETUPS): per band σ² = (D·s_b)² + P·a_b·max(f, 0), s_b the JADES survey's
median background σ (F430M, F460M, F480M: SBIPIX's 1σ limits), a_b its Poisson coefficient, D a
depth factor and P = 1 or 0 (error maps with or without the source's Poisson noise), over four band
sets; every galaxy is observed in every setup, with its own noise draw.

Metrics per (model, setup, galaxy) and pooled per (model, setup), over the pixels the map fits
(S/N > 5 in F277W+F356W+F444W, sbipix's selection): median Δ log M* (posterior median − truth),
NMAD, the median width of the 16–84 % interval (`median_width68`, dex), the fraction of truths
inside it (with its exact 99 % binomial range
under perfect calibration) and the median PPC reduced χ² — the numbers issue 18 judges (|median
Δ| ≤ 0.15 dex, NMAD ≤ 0.2, 68 % coverage 0.55–0.80, PPC χ² ≤ 3) — and the median
log10 of the mass-weighted age's posterior median over its truth (where the age pulls the mass).
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np

SNR_BANDS = ["F277W", "F356W", "F444W"]
ACS = ["F435W", "F606W", "F775W", "F814W", "F850LP"]
MEDIUM = ["F182M", "F210M", "F335M", "F430M", "F460M", "F480M"]
SETUPS = {  # name → (depth factor D, Poisson factor P, bands missing)
    "jades_depth": (1.0, 1.0, ["F430M", "F460M", "F480M"]),
    "sbipix_pixel_depth_x4": (4.0, 1.0, []),
    "nircam8_sky_only_x2": (2.0, 0.0, ACS + [b for b in MEDIUM if b != "F410M"]),
    "deep_no_hst_x0.5": (0.5, 1.0, ACS),
    "jades_depth_sky_only": (1.0, 0.0, ["F430M", "F460M", "F480M"]),
    "shallow_x8": (8.0, 1.0, ["F430M", "F460M", "F480M"]),
}
NIRCAM = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F430M", "F444W",
          "F460M", "F480M"]


def only(keep):
    """The bands missing when a survey has only `keep`."""
    return [b for b in NIRCAM + ACS if b not in keep]


# Other surveys' band sets (`--setups`; not in the default six, so the default run's noise draws
# stay as they were). Depths relative to JADES' median background, from the programmes' 5σ
# point-source depths: CEERS and PRIMER ≈ 1 mag shallower than JADES-Deep/Medium (D = 2.5),
# COSMOS-Web ≈ 2 mag (D = 6). Bands: CEERS NIRCam 7 + ACS F606W, F814W; PRIMER the same with
# F090W; COSMOS-Web F115W, F150W, F277W, F444W only (no F356W: sbipix's selection uses the two
# of its three bands that are measured).
OTHER_SETUPS = {
    "ceers_like_x2.5": (2.5, 1.0, only(["F115W", "F150W", "F200W", "F277W", "F356W", "F410M", "F444W", "F606W", "F814W"])),
    "primer_like_x2.5": (2.5, 1.0, only(["F090W", "F115W", "F150W", "F200W", "F277W", "F356W", "F410M", "F444W", "F606W",
                                         "F814W"])),
    "cosmos_web_like_x6": (6.0, 1.0, only(["F115W", "F150W", "F277W", "F444W"])),
}
GALAXIES = [  # (name, z, centre log M formed, age/t_univ centre→edge, log τ, log Z, A_V centre)
    ("old_disc_quenched_centre", 0.7, 7.4, (0.85, 0.5), (-1.0, 0.3), 0.1, 0.4),
    ("star_forming_disc", 1.0, 7.2, (0.6, 0.4), (0.5, 1.0), -0.2, 0.8),
    ("cosmic_noon_disc", 2.3, 7.6, (0.5, 0.3), (0.0, 0.8), -0.4, 1.2),
    ("young_dusty", 3.0, 7.4, (0.3, 0.15), (-0.3, 0.5), -0.3, 1.8),
    ("elgordo_like_dusty", 4.33, 7.8, (0.4, 0.2), (-0.5, 0.5), -0.2, 2.2),
    ("young_metal_poor", 6.0, 7.0, (0.3, 0.1), (-0.5, 0.5), -1.2, 0.3),
]


def band_names(filters):
    return [re.search(r"(?<![A-Z0-9])F\d{3,4}[A-Z]{1,2}", os.path.basename(f).upper()).group(0) for f in filters]


def read_filter_list(flist):
    base = os.path.dirname(os.path.abspath(flist))
    return [os.path.join(base, l.strip()) for l in open(flist) if l.strip() and not l.startswith("#")]


def survey_noise(bands):
    """Median σ_bg and Poisson coefficient of the built-in JADES survey, per band."""
    here = os.path.dirname(os.path.abspath(__file__))
    s = tomllib.load(open(os.path.join(here, "..", "crates", "sbipix-sim", "data", "survey_jades.toml"), "rb"))
    by = {b["name"]: b for b in s["bands"]}
    med = [float(np.interp(0.5, np.linspace(0, 1, len(by[b]["sigma_bg_quantiles_ujy"])), by[b]["sigma_bg_quantiles_ujy"]))
           if len(by[b]["sigma_bg_quantiles_ujy"]) > 1 else by[b]["sigma_bg_quantiles_ujy"][0] for b in bands]
    return np.array(med), np.array([by[b]["poisson_ujy"] for b in bands])


def make_galaxies(a, filters, bands):
    import bagpipes as pipes
    from bagpipes import utils

    rng = np.random.default_rng(a.seed)
    n = a.size
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2) / (n / 2)  # 0 centre, ≈ 1 at the edge
    model = None
    out = []
    for name, z, m0, (a0, a1), (lt0, lt1), lz, av0 in GALAXIES:
        t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
        truth = {k: np.zeros((n, n)) for k in ("log_mass_formed", "log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr",
                                              "logzsol", "av_mag", "age_gyr", "tau_gyr")}
        flux = np.zeros((len(bands), n, n))
        for y in range(n):
            for x in range(n):
                rr = r[y, x]
                lm = m0 - 1.8 * rr + rng.normal(0, 0.1)
                age = max(t_univ * (a0 + (a1 - a0) * rr) * 10 ** rng.normal(0, 0.05), 0.02)
                tau = 10 ** (lt0 + (lt1 - lt0) * rr + rng.normal(0, 0.1))
                logz = float(np.clip(lz - 0.3 * rr + rng.normal(0, 0.1), -2.2, 0.35))
                av = float(np.clip(av0 * np.exp(-1.5 * rr) + rng.normal(0, 0.05), 0, 4.2))
                comp = {"redshift": z,
                        "delayed": {"age": age, "tau": tau, "massformed": lm, "metallicity": 10 ** logz},
                        "dust": {"type": "Calzetti", "Av": av}, "nebular": {"logU": -2.0}}
                if model is None:
                    model = pipes.model_galaxy(comp, filt_list=filters, phot_units="mujy")
                model.update(comp)
                flux[:, y, x] = model.photometry
                sfh = model.sfh
                for k, v in (("log_mass_formed", lm), ("log_mstar", sfh.stellar_mass),
                             ("log_sfr_100myr", np.log10(max(sfh.sfr, 10 ** (lm - 14)))),
                             ("mass_weighted_age_gyr", sfh.mass_weighted_age), ("logzsol", logz), ("av_mag", av),
                             ("age_gyr", age), ("tau_gyr", tau)):
                    truth[k][y, x] = v
        np.savez(os.path.join(a.work, f"galaxy_{name}.npz"), flux=flux, z=z, **truth)
        out.append(name)
        print(f"bagpipes: {name} done", flush=True)
    return out


def write_cube(path, flux, err, bands, z):
    from astropy.io import fits

    h = fits.Header()
    for k, b in enumerate(bands):
        h[f"BAND{k}"] = b
    h["REDSHIFT"] = z
    h["BUNIT"] = "uJy"
    u = fits.Header({"BUNIT": "uJy"})
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(flux.astype(np.float32), header=u, name="FLUX"),
                  fits.ImageHDU(err.astype(np.float32), header=u, name="ERR")]).writeto(path, overwrite=True)


def observe_and_map(a, bands, models, setups):
    s_med, poisson = survey_noise(bands)
    rng = np.random.default_rng(a.seed + 1)
    rows = []
    for gi, (name, *_rest) in enumerate(GALAXIES):
        g = np.load(os.path.join(a.work, f"galaxy_{name}.npz"))
        z = float(g["z"])
        for si, (setup, (d, p, missing)) in enumerate(setups.items()):
            keep = [k for k, b in enumerate(bands) if b not in missing]
            f = g["flux"][keep]
            sig = np.sqrt((d * s_med[keep])[:, None, None] ** 2 + p * poisson[keep][:, None, None] * np.maximum(f, 0))
            obs = f + sig * rng.standard_normal(f.shape)
            cube = os.path.join(a.work, f"cube_{name}_{setup}.fits")
            write_cube(cube, obs, sig, [bands[k] for k in keep], z)
            for mname, mpath in models:
                out = os.path.join(a.work, "maps", mname, f"{name}_{setup}")
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                # 0.03″ pixels (the cubes carry no WCS; a model with a mass-per-kpc² prior needs it)
                cmd = [a.sbipix, "map", "--cube", cube, "--seed", "1", "--pixel-scale", "0.03", "--out", out]
                if not a.exact:
                    cmd.append("--fast")
                elif a.sys_err is not None:
                    cmd += ["--sys-err", str(a.sys_err)]
                if mpath != "default":
                    cmd += ["--model", mpath]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"{mname} {name} {setup}: sbipix failed:\n{r.stderr}")
                rows.append(dict(model=mname, galaxy=name, setup=setup, **metrics(out, g)))
                print(f"{mname:>12} {setup:>24} {name:>26}: " + " ".join(f"{k} {v:.3g}" for k, v in rows[-1].items()
                                                                          if isinstance(v, float)), flush=True)
    return rows


def metrics(out, g):
    from astropy.io import fits

    with fits.open(os.path.join(out, "maps.fits")) as h:
        p16, p50, p84 = (h[f"LOG_MSTAR_{q}"].data for q in ("P16", "P50", "P84"))
        chi2 = h["PPC_CHI2"].data if "PPC_CHI2" in h else np.full(p50.shape, np.nan)
        snr = h["SNR"].data
        age50 = h["MASS_WEIGHTED_AGE_GYR_P50"].data if "MASS_WEIGHTED_AGE_GYR_P50" in h else np.full(p50.shape, np.nan)
    ok = np.isfinite(p50)
    dage = np.log10(age50[ok] / g["mass_weighted_age_gyr"][ok])
    t = g["log_mstar"][ok]
    d = p50[ok] - t
    inside = (p16[ok] <= t) & (t <= p84[ok])
    return dict(n=int(ok.sum()), snr_median=float(np.median(snr[ok])) if ok.any() else np.nan,
                median_dlogm=float(np.median(d)) if ok.any() else np.nan,
                nmad=float(1.4826 * np.median(np.abs(d - np.median(d)))) if ok.any() else np.nan,
                cov68=float(inside.mean()) if ok.any() else np.nan, inside=int(inside.sum()),
                median_width68=float(np.median(p84[ok] - p16[ok])) if ok.any() else np.nan,
                ppc_chi2_median=float(np.nanmedian(chi2[ok])) if ok.any() else np.nan,
                median_dlogage=float(np.nanmedian(dage)) if np.isfinite(dage).any() else np.nan)


def pooled(rows):
    from scipy.stats import binom

    out = []
    for (m, s) in sorted({(r["model"], r["setup"]) for r in rows}):
        rs = [r for r in rows if r["model"] == m and r["setup"] == s]
        n = sum(r["n"] for r in rs)
        k = sum(r["inside"] for r in rs)
        lo, hi = binom.ppf(0.005, n, 0.6827) / n, binom.ppf(0.995, n, 0.6827) / n
        out.append(dict(model=m, setup=s, galaxies=len(rs), n=n, median_of_median_dlogm=float(np.median([r["median_dlogm"] for r in rs])),
                        worst_median_dlogm=float(max((r["median_dlogm"] for r in rs), key=abs)),
                        median_nmad=float(np.median([r["nmad"] for r in rs])), cov68=k / n,
                        median_width68=float(np.median([r["median_width68"] for r in rs])),
                        cov68_99pct_range=f"{lo:.3f}-{hi:.3f}",
                        median_ppc_chi2=float(np.median([r["ppc_chi2_median"] for r in rs])),
                        median_of_median_dlogage=float(np.median([r["median_dlogage"] for r in rs]))))
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sbipix")
    ap.add_argument("filters")
    ap.add_argument("out")
    ap.add_argument("--models", default="default", help="comma-separated NAME=PATH (or `default`)")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--size", type=int, default=20)
    ap.add_argument("--work", default="/tmp/sbipix-bagpipes-depths")
    ap.add_argument("--stage", default="all", choices=["all", "make", "map"])
    ap.add_argument("--exact", action="store_true", help="the exact posteriors (sbipix's default) instead of --fast")
    ap.add_argument("--setups", default=None,
                    help="comma-separated setups (default: the six of SETUPS); also " + ", ".join(OTHER_SETUPS))
    ap.add_argument("--sys-err", type=float, default=None,
                    help="with --exact: the systematic error (sbipix's default 0.05; these simulations have none, so 0 is exact)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    filters = read_filter_list(a.filters)
    bands = band_names(filters)
    models = [tuple(m.split("=", 1)) if "=" in m else (m, m) for m in a.models.split(",")]
    if a.stage in ("all", "make"):
        make_galaxies(a, filters, bands)
    if a.stage in ("all", "map"):
        every = {**SETUPS, **OTHER_SETUPS}
        names = a.setups.split(",") if a.setups else list(SETUPS)
        unknown = [n for n in names if n not in every]
        if unknown:
            sys.exit(f"--setups: unknown {unknown}; known: {', '.join(every)}")
        rows = observe_and_map(a, bands, models, {n: every[n] for n in names})
        write_csv(os.path.join(a.out, "bagpipes_depths_galaxies.csv"), rows)
        pool = pooled(rows)
        write_csv(os.path.join(a.out, "bagpipes_depths.csv"), pool)
        for r in pool:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
