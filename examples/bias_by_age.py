"""Bias of posterior medians binned by the true mass-weighted age, for one or more models.

    python examples/bias_by_age.py MODEL [MODEL ...] [--n 3000] [--seed 99]

Draws fresh simulations from the first model's prior and survey (sbipix.simulate with the
built-in delayed-τ prior and the jades survey), keeps the cases a map would fit (mean S/N over
F277W/F356W/F444W > 5) and prints, per model, the median (posterior median − truth) of the age and
A_V in bins of the true age (docs/validation.md, "How the default got here").
"""

import argparse
import tempfile

import numpy as np

import sbipix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=99)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ts = sbipix.simulate(a.n, f"{tmp}/ts", seed=a.seed)
    names, th = ts["parameter_names"], ts["theta"]
    f, s, z, obs = ts["flux_obs"], ts["sigma"], ts["redshift"], ts["observed"].astype(bool)
    bands = ts["bands"]
    sel = [bands.index(b) for b in ("F277W", "F356W", "F444W")]
    snr = np.array([np.mean([f[i, b] / s[i, b] for b in sel if obs[i, b]] or [np.nan]) for i in range(len(z))])
    ok = snr > 5
    age = th[ok, names.index("mass_weighted_age_gyr")]
    bins = [(0, 0.3), (0.3, 1), (1, 3), (3, 14)]
    for path in a.models:
        m = sbipix.Model.load(path)
        d = m.sample(f[ok], s[ok], z[ok], n=300, mask=obs[ok], bands=bands)
        for q in ("mass_weighted_age_gyr", "av_mag"):
            med = np.median(d[:, :, m.parameter_names.index(q)], axis=1)
            tr = th[ok, names.index(q)]
            cells = [f"{lo}-{hi} Gyr (n {int(w.sum())}): {np.median(med[w] - tr[w]):+.2f}" for lo, hi in bins for w in [(age >= lo) & (age < hi)]]
            print(f"{path}  {q} bias by true age: " + "; ".join(cells))


if __name__ == "__main__":
    main()
