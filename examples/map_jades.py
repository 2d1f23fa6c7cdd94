"""Worked example: map a real JADES cube with the Python package and plot the maps.

    python examples/map_jades.py ../shared/real_data/jades_gsz14_pixels/cube_19band.fits jades_maps.png

The cube (FLUX/ERR HDUs, 19 bands, µJy per pixel) has no redshift; z = 3 is illustrative.
Requires `pip install ".[plot]"` (matplotlib); astropy is used only to show the FITS round trip.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import sbipix


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cube")
    ap.add_argument("figure")
    ap.add_argument("--redshift", type=float, default=3.0)
    ap.add_argument("--draws", type=int, default=500)
    a = ap.parse_args()

    model = sbipix.Model.load("default")
    print(model)
    maps = model.map_cube(a.cube, redshift=a.redshift, draws=a.draws)
    s = maps.summary
    print(f"{s['n_pixels']} pixels fitted ({s['ms_per_pixel']:.2f} ms/pixel); bands missing: {', '.join(s['bands_missing'])}")
    print(f"log M* resolved {s['log_mstar_resolved'][1]:.2f}, integrated {s['log_mstar_integrated'][1]:.2f}")
    if s.get("ppc_median_chi2_reduced") is not None:
        print(f"posterior-predictive check: median reduced chi2 {s['ppc_median_chi2_reduced']:.2f}")

    panels = [
        ("LOG_MSTAR_P50", r"$\log M_\star$ [M$_\odot$]", "viridis"),
        ("LOG_SFR_100MYR_P50", r"$\log$ SFR$_{100}$ [M$_\odot$/yr]", "magma"),
        ("MASS_WEIGHTED_AGE_GYR_P50", "mass-weighted age [Gyr]", "cividis"),
        ("AV_MAG_P50", r"$A_V$ [mag]", "inferno"),
        ("LOGZSOL_P50", r"$\log Z/Z_\odot$", "plasma"),
        ("SNR", "S/N (F277W, F356W, F444W)", "gray"),
    ]
    # crop to the fitted pixels (plus a margin) so the galaxies fill the panels
    ys, xs = np.nonzero(maps["MASK"] == 1)
    y0, y1 = max(ys.min() - 5, 0), ys.max() + 6
    x0, x1 = max(xs.min() - 5, 0), xs.max() + 6
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), constrained_layout=True)
    for ax, (name, label, cmap) in zip(axes.flat, panels):
        img = maps[name][y0:y1, x0:x1]
        finite = img[np.isfinite(img)]
        lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0, 1)
        im = ax.imshow(img, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"sbipix maps, z = {a.redshift} ({s['n_pixels']} pixels with S/N > 5)")
    fig.savefig(a.figure, dpi=110)
    print(f"wrote {a.figure}")


if __name__ == "__main__":
    main()
