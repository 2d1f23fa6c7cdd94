#!/usr/bin/env python3
"""Reference photometry from bagpipes 1.3.6 itself, for sbipix's forward-model tests.

bagpipes is GPL-3 and is not part of sbipix: this script is run by a developer (see
make_bagpipes_reference.sh, which installs it with pip into a throw-away virtual environment)
and only its output tables are committed:

  crates/sbipix/tests/data/bagpipes_reference_full.csv   delayed-tau + Calzetti + nebular
                                                          (log U = -2) + DL07 + Inoue IGM
  crates/sbipix/tests/data/bagpipes_reference_stars.csv  the same galaxies, stars + IGM only

Usage: python bagpipes_reference.py FILTER_LIST OUT_DIR [N] [SEED]
FILTER_LIST is SBIPIX's filters_jades_no_wfc.dat (paths relative to it).
Also prints the median time of one model evaluation (bagpipes' `update`).
"""
import os
import sys
import time

import numpy as np
import bagpipes as pipes
from bagpipes import utils

flist, outdir = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 250
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 20261125
base = os.path.dirname(os.path.abspath(flist))
filters = [os.path.join(base, l.strip()) for l in open(flist) if l.strip() and not l.startswith("#")]
bands = []
for f in filters:
    name = os.path.basename(f).upper()
    import re
    m = re.search(r"(?<![A-Z0-9])F\d{3,4}[A-Z]{1,2}", name)
    bands.append(m.group(0))

rng = np.random.default_rng(seed)
rows = []
for i in range(n):
    z = rng.uniform(0.2, 7.0)
    t_univ = np.interp(z, utils.z_array, utils.age_at_z)  # Gyr, bagpipes' own table
    # ages log-uniform from 5 Myr to the age of the universe (strictly inside it)
    age = 10 ** rng.uniform(np.log10(0.005), np.log10(0.999 * t_univ))
    tau = 10 ** rng.uniform(-2, 1)
    logm = rng.uniform(7, 11)
    logzsol = rng.uniform(-2.2, 0.39)
    av = rng.uniform(0, 2)
    rows.append((i, z, logm, age, tau, logzsol, av))


def components(r, full):
    i, z, logm, age, tau, logzsol, av = r
    c = {"redshift": z,
         "delayed": {"age": age, "tau": tau, "massformed": logm, "metallicity": 10 ** logzsol}}
    if full:
        c["dust"] = {"type": "Calzetti", "Av": av}
        c["nebular"] = {"logU": -2.0}
    return c


for full, name in [(True, "full"), (False, "stars")]:
    model = None
    times = []
    out = []
    for r in rows:
        c = components(r, full)
        if model is None:
            model = pipes.model_galaxy(c, filt_list=filters, phot_units="mujy")
        t0 = time.perf_counter()
        model.update(c)
        times.append(time.perf_counter() - t0)
        s = model.sfh
        out.append(list(r) + [-2.0 if full else np.nan, s.stellar_mass, np.log10(s.sfr) if s.sfr > 0 else -np.inf,
                              s.mass_weighted_age] + list(model.photometry))
    header = ("id,redshift,log_mass_formed,age_gyr,tau_gyr,logzsol,av_mag,logu,"
              "bagpipes_log_mstar,bagpipes_log_sfr_100myr,bagpipes_mass_weighted_age_gyr,"
              + ",".join("flux_ujy_" + b for b in bands))
    path = os.path.join(outdir, "bagpipes_reference_%s.csv" % name)
    with open(path, "w") as f:
        f.write("# bagpipes %s photometry (phot_units='mujy') of %d delayed-tau galaxies, seed %d\n"
                % (pipes.__version__ if hasattr(pipes, "__version__") else "1.3.6", n, seed))
        f.write("# model: %s; filters: SBIPIX curves (filters_jades_no_wfc.dat)\n"
                % ("Calzetti dust (eta=1) + nebular logU=-2 + DL07 (qpah 2, umin 1, gamma 0.01) + Inoue14 IGM"
                   if full else "stars + Inoue14 IGM only (av_mag ignored)"))
        f.write("# made by scripts/bagpipes_reference.py; cosmology FlatLambdaCDM(H0=70, Om0=0.3)\n")
        f.write(header + "\n")
        for o in out:
            f.write(",".join("%d" % o[0] if k == 0 else repr(float(v)) for k, v in enumerate(o)) + "\n")
    print("%s: %d models, median update time %.2f ms" % (path, n, 1e3 * np.median(times)))
