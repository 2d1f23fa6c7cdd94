#!/usr/bin/env python3
"""sbipix's likelihood refinement beside a bagpipes 1.3.6 + nautilus fit of the same photometry.

A check against an independent code and a benchmark in the same run (BENCHMARKS.md,
*Likelihood refinement*). bagpipes is GPL-3 and not part of sbipix: run this in a throw-away
virtual environment (`python3 -m venv /tmp/bp && /tmp/bp/bin/pip install bagpipes==1.3.6
nautilus-sampler`); nothing of it is committed.

Usage: python compare_refine_bagpipes.py SBIPIX_BINARY FILTER_LIST OUT_DIR [N] [SEED]

FILTER_LIST is SBIPIX's filters_jades_no_wfc.dat (the 19 bands sbipix uses by default). N galaxies
(default 8) with pixel-like masses are drawn from SBIPIX's delayed-τ prior (restricted to S/N
10–30 in the bright bands), made by `sbipix photometry`, given Gaussian noise (3 % of each flux
and 1 % of the brightest band, in quadrature) and fitted

* by `sbipix --threads 1 fit --catalog … --refine --error-floor 0` (the network, then the
  refinement against the exact likelihood; one core), and
* by bagpipes with nautilus (400 live points, one core) under the same prior: delayed τ with age
  uniform in (0, t_univ(z)), log-uniform τ in (0.01, 100) Gyr, log M formed uniform in (4, 12),
  log-uniform Z in (10^-2.27, 10^0.4) Z☉, Calzetti A_V uniform in (0, 4.3), nebular log U = −2.

Printed: per galaxy and parameter the two medians and 16–84 % intervals, the difference of the
medians in units of bagpipes' half-width, and the wall time of each code per galaxy.
"""
import csv
import os
import re
import subprocess
import sys
import time

import numpy as np

sbipix, flist, out = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 8
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 20261129
os.makedirs(out, exist_ok=True)
os.chdir(out)

import bagpipes as pipes  # noqa: E402  (after chdir: bagpipes writes ./pipes/)
from bagpipes import utils  # noqa: E402

base = os.path.dirname(os.path.abspath(flist))
filters = [os.path.join(base, l.strip()) for l in open(flist) if l.strip() and not l.startswith("#")]
bands = [re.search(r"(?<![A-Z0-9])F\d{3,4}[A-Z]{1,2}", os.path.basename(f).upper()).group(0) for f in filters]

rng = np.random.default_rng(seed)
rows = []
for i in range(n):
    z = rng.uniform(0.5, 5.0)
    t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
    rows.append(dict(id=f"g{i}", redshift=z, log_mass_formed=rng.uniform(8.0, 9.5),
                     age_gyr=(1 - rng.uniform(0, 1)) * t_univ, tau_gyr=10 ** rng.uniform(-2, 2),
                     logzsol=rng.uniform(-2.27, 0.4), av_mag=rng.uniform(0, 2.0), logu=-2.0))
with open("params.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
subprocess.run([sbipix, "photometry", "--params", "params.csv", "--out", "truth.csv"], check=True)
truth = list(csv.DictReader(open("truth.csv")))

cat = []
for r in truth:
    f = np.array([float(r[f"flux_ujy_{b}"]) for b in bands])
    sig = np.sqrt((0.03 * f) ** 2 + (0.01 * f.max()) ** 2)
    obs = f + rng.normal(0, sig)
    row = {"id": r["id"], "redshift": r["redshift"]}
    for b, v, s in zip(bands, obs, sig):
        row[f"flux_ujy_{b}"], row[f"err_ujy_{b}"] = v, s
    cat.append(row)
with open("catalog.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(cat[0]))
    w.writeheader()
    w.writerows(cat)

t0 = time.time()
# the model BENCHMARKS.md's numbers came from (the default until 2026-12-03)
subprocess.run([sbipix, "--threads", "1", "fit", "--model", os.environ.get("SBIPIX_MODEL", "sbipix2025"), "--catalog", "catalog.csv", "--refine", "--error-floor", "0", "--no-ppc",
                "--out", "sbipix_fit.csv"], check=True)
t_sbipix = (time.time() - t0) / n
fit = {r["id"]: r for r in csv.DictReader(open("sbipix_fit.csv"))}

params = {  # sbipix column → bagpipes posterior sample → transform
    "log_mstar": ("stellar_mass", lambda x: x),
    "log_sfr_100myr": ("sfr", lambda x: np.log10(np.maximum(x, 1e-30))),
    "mass_weighted_age_gyr": ("mass_weighted_age", lambda x: x),  # bagpipes: already Gyr
    "logzsol": ("delayed:metallicity", np.log10),
    "av_mag": ("dust:Av", lambda x: x),
}
times, pulls = [], {p: [] for p in params}
print(f"{'galaxy':7} {'parameter':22} {'truth':>8} {'sbipix p16/p50/p84':>26} {'bagpipes p16/p50/p84':>26} {'Δ/σ':>6}")
for r, c in zip(truth, cat):
    z = float(r["redshift"])
    t_univ = float(np.interp(z, utils.z_array, utils.age_at_z))
    data = np.array([[float(c[f"flux_ujy_{b}"]), float(c[f"err_ujy_{b}"])] for b in bands])
    gal = pipes.galaxy(r["id"], lambda _id, d=data: d, spectrum_exists=False, filt_list=filters, phot_units="mujy")
    instr = {"redshift": z,
             "delayed": {"age": (0.0, t_univ), "tau": (0.01, 100.0), "tau_prior": "log_10",
                         "massformed": (4.0, 12.0), "metallicity": (10 ** -2.27, 10 ** 0.4),
                         "metallicity_prior": "log_10"},
             "dust": {"type": "Calzetti", "Av": (0.0, 4.3)},
             "nebular": {"logU": -2.0}}
    t0 = time.time()
    ft = pipes.fit(gal, instr, run="cmp")
    ft.fit(verbose=False, sampler="nautilus", n_live=400, pool=1)
    ft.posterior.get_basic_quantities()
    times.append(time.time() - t0)
    for p, (bp, tr) in params.items():
        s = tr(np.asarray(ft.posterior.samples[bp]))
        q = np.percentile(s, [16, 50, 84])
        mine = [float(fit[r["id"]][f"{p}_{k}"]) for k in ("p16", "p50", "p84")]
        half = max((q[2] - q[0]) / 2, 1e-6)
        d = (mine[1] - q[1]) / half
        pulls[p].append(d)
        print(f"{r['id']:7} {p:22} {float(r[p]):8.3f} {mine[0]:8.3f} {mine[1]:8.3f} {mine[2]:8.3f} "
              f"{q[0]:8.3f} {q[1]:8.3f} {q[2]:8.3f} {d:6.2f}")
print()
for p, v in pulls.items():
    v = np.abs(v)
    print(f"{p:22} |Δ median| / bagpipes half-width: median {np.median(v):.2f}, max {v.max():.2f}")
print(f"wall time per galaxy, one core: sbipix (network + refinement, incl. start-up) {t_sbipix:.2f} s, "
      f"bagpipes + nautilus {np.median(times):.1f} s (median; range {min(times):.1f}–{max(times):.1f}); "
      f"ratio {np.median(times) / t_sbipix:.0f}×")
