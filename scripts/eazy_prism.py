#!/usr/bin/env python3
"""EAZY (eazy-py, Brammer et al. 2008), an independent photometric-redshift code, on the JADES
PRISM set of docs/photo-z.md: the same 543 galaxies, the same 11 NIRCam bands and filter curves,
the same `_scattered` fluxes (or the noiseless `_Jy` ones) and `_errs` errors as `sbipix fit
--photo-z-only`, metrics computed the same way (z = p(z)'s median, outliers |Δz|/(1+z) > 0.15, the
469 clean galaxies as in scripts/validate_photoz.py). With `--residuals`, EAZY's best fit at the
spectroscopic redshift and its median residual per band, outliers apart (σ with 5 % added in
quadrature, as sbipix's default systematic error).

EAZY and its templates are not part of sbipix and nothing of them is committed: a throw-away venv
(`python3 -m venv /tmp/ez && /tmp/ez/bin/pip install eazy`) and the templates of
github.com/gbrammer/eazy-photoz (`templates/sfhz/`, `templates/TEMPLATE_ERROR.v2.0.zfourge`).

    python eazy_prism.py EAZY_PHOTOZ_DIR OUT_JSON [--templates templates/sfhz/blue_sfhz_13.param]
           [--fluxes _Jy_scattered|_Jy] [--residuals]

EAZY_PHOTOZ_DIR holds the eazy-photoz checkout's `templates/` (the .param files name templates
relative to it). Settings: flat prior (no magnitude prior, as sbipix's default), 0.01 < z < 12 in
steps of 0.01, EAZY's template error function (TEMPLATE_ERROR.v2.0.zfourge, amplitude 0.2), 1 %
systematic error, no Galactic extinction.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRISM = os.path.join(ROOT, "..", "shared", "real_data", "jades_prism_synthphot", "PRISM_5.5z6.5_JOF_v11_synthphot.txt")
FILTERS = os.path.join(ROOT, "..", "shared", "filters", "FILTERS_JWST")
BANDS = ["F090W", "F115W", "F150W", "F182M", "F200W", "F210M", "F277W", "F335M", "F356W", "F410M", "F444W"]


def curve(b):
    name = f"JWST_{b}.dat.txt" if b.endswith("W") else f"JWST_NIRCam.{b}.dat"
    return np.loadtxt(os.path.join(FILTERS, name))


def metrics(zs, z, sel):
    dz = ((z - zs) / (1 + zs))[sel]
    return {"n": int(sel.sum()), "sigma_nmad": float(1.4826 * np.median(np.abs(dz - np.median(dz)))),
            "bias": float(np.median(dz)), "outlier_fraction": float(np.mean(np.abs(dz) > 0.15))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eazy_dir")
    ap.add_argument("out_json")
    ap.add_argument("--templates", default="templates/sfhz/blue_sfhz_13.param")
    ap.add_argument("--fluxes", default="_Jy_scattered", choices=["_Jy_scattered", "_Jy"])
    ap.add_argument("--residuals", action="store_true")
    a = ap.parse_args()
    out_json = os.path.abspath(a.out_json)
    work = tempfile.mkdtemp(prefix="eazy_prism_")  # EAZY's inputs (the filter curves are third-party: not beside OUT)
    with open(os.path.join(work, "FILTER.RES"), "w") as f:  # EAZY's filter file: a `lambda_c` header per curve
        for b in BANDS:
            d = curve(b)
            f.write(f"{len(d)} {b} lambda_c= 0\n")
            f.writelines(f"{i + 1} {w:.3f} {t:.6g}\n" for i, (w, t) in enumerate(d))
    lines = [l.split() for l in open(PRISM) if l.strip()]
    col = {h: i for i, h in enumerate(lines[0])}
    rows = lines[1:]
    zs = np.array([float(r[col["z"]]) for r in rows])
    with open(os.path.join(work, "cat.txt"), "w") as f:
        f.write("# id z_spec " + " ".join(f"f_{b} e_{b}" for b in BANDS) + "\n")
        for r in rows:
            vals = [f"{float(r[col[b + s]]) * 1e6:.6g}" for b in BANDS for s in (a.fluxes, "_Jy_errs")]
            f.write(f"{r[0]} {r[col['z']]} " + " ".join(vals) + "\n")
    with open(os.path.join(work, "zphot.translate"), "w") as f:
        f.writelines(f"f_{b} F{i + 1}\ne_{b} E{i + 1}\n" for i, b in enumerate(BANDS))
    # the same data-quality split as validate_photoz.py, from the noiseless fluxes
    clean = []
    for r in rows:
        fl = [float(r[col[b + "_Jy"]]) for b in BANDS]
        er = [float(r[col[b + "_Jy_errs"]]) for b in BANDS]
        clean.append(not any(v == 0 for v in fl) and not any(v < -3 * s for v, s in zip(fl, er)))
    clean = np.array(clean)

    os.chdir(a.eazy_dir)
    import eazy.photoz

    params = dict(FILTERS_RES=os.path.join(work, "FILTER.RES"), CATALOG_FILE=os.path.join(work, "cat.txt"),
                  TEMPLATES_FILE=a.templates, MW_EBV=0.0, Z_MIN=0.01, Z_MAX=12.0, Z_STEP=0.01, PRIOR_ABZP=23.9,
                  APPLY_PRIOR="n", FIX_ZSPEC="n", SYS_ERR=0.01, TEMP_ERR_FILE="templates/TEMPLATE_ERROR.v2.0.zfourge",
                  TEMP_ERR_A2=0.2, CATALOG_FORMAT="ascii.commented_header", N_MIN_COLORS=3)
    pz = eazy.photoz.PhotoZ(param_file=None, translate_file=os.path.join(work, "zphot.translate"), zeropoint_file=None,
                            params=params, load_prior=False, load_products=False, n_proc=2)
    pz.fit_catalog(pz.idx, n_proc=2)
    z50 = pz.pz_percentiles([50])[:, 0]
    out = {"templates": a.templates, "fluxes": a.fluxes,
           "all": metrics(zs, z50, np.ones(len(zs), bool)), "clean": metrics(zs, z50, clean),
           "z_ml_all": metrics(zs, pz.zml, np.ones(len(zs), bool)), "z_ml_clean": metrics(zs, pz.zml, clean)}
    if a.residuals:
        pz.fit_at_zbest(zbest=zs, prior=False, beta_prior=False)
        r = (pz.fnu - pz.fmodel) / np.sqrt(pz.efnu ** 2 + (0.05 * pz.fnu) ** 2)
        chi2 = np.sum(r ** 2, axis=1)
        outl = np.abs((z50 - zs) / (1 + zs)) > 0.15
        for name, sel in (("clean_outliers", outl & clean), ("clean_rest", ~outl & clean)):
            out[f"at_zspec_{name}"] = {"n": int(sel.sum()), "median_chi2": float(np.median(chi2[sel])),
                                       "median_residual_sigma": {b: float(np.median(r[sel, i])) for i, b in enumerate(BANDS)}}
    with open(out_json, "w") as f:
        json.dump(out, f, indent=1)
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
