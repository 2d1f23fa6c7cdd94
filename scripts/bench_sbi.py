#!/usr/bin/env python3
"""sbi's side of the posterior benchmarks in BENCHMARKS.md (issue 18, item 7), at the shapes of
sbipix's default network: 5 parameters, 58 inputs (19 bands × flux, σ, mask + redshift).

    python scripts/bench_sbi.py TRAINING_SET_DIR [--threads 2] [--pixels 1000] [--draws 500]
                                [--train-pairs 100000] [--epochs 2] [--out bench_sbi.json]

Runs in a throw-away virtual environment with sbi from PyPI (`python3 -m venv /tmp/sbi &&
/tmp/sbi/bin/pip install "sbi==0.27.*"`); never imported by sbipix. For each flow (NSF: 5
transforms, 128 hidden units, 8 bins, tail bound 4 — sbipix's; MAF: 5 transforms, 128 hidden, 2
blocks) it times

* training: `NPE.train` on the first `train_pairs` pairs of the training set (batch 256, no
  early stopping) for `epochs` epochs: seconds per epoch;
* raw flow sampling of the trained network: `density_estimator.sample((draws,), condition=x)` for
  `pixels` pixels in one batch (the cost does not depend on how well it is trained);
* sbi's `DirectPosterior.sample_batched((draws,), x, reject_outside_prior=False)` over the same
  pixels. With the rejection on (sbi's default; a box prior over the training θ's range) a
  network trained for two epochs leaks enough outside the box that some pixels accept 1 % of
  their draws and the run does not finish in minutes, so it is off; `raw_draws_inside_prior`
  records the fraction of raw draws the rejection would keep (sbipix's bounded outputs need
  none).

The sbipix side in the same session: `cargo bench -p sbipix-flow --bench flow --
posterior_sampling_58` and `sbipix train` (BENCHMARKS.md names both commands). sbipix's
conditioner has two hidden layers of 128; nflows' residual net with one block (an input layer,
one block of two layers, an output layer) is the nearest shape sbi builds, one layer more.
Prints one JSON object; `--out` also writes it.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("training_set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pixels", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--train-pairs", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=100, help="pixels per raw sampling call")
    ap.add_argument("--flows", default="nsf_5x128_8bins,maf_5x128_2blocks")
    ap.add_argument("--out")
    a = ap.parse_args()

    import torch
    import sbi
    from sbi.inference import NPE
    from sbi.inference.posteriors import DirectPosterior
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    # sbi writes TensorBoard logs into ./sbi-logs: keep them out of the caller's folder
    d = os.path.abspath(a.training_set)
    out_path = os.path.abspath(a.out) if a.out else None
    os.chdir(tempfile.mkdtemp(prefix="bench_sbi-"))
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    names = [p["name"] for p in json.load(open(os.path.join(d, "manifest.json")))["parameters"]]
    want = ["log_mstar", "log_sfr_100myr", "mass_weighted_age_gyr", "logzsol", "av_mag"]
    theta = np.load(os.path.join(d, "theta.npy"))[:, [names.index(w) for w in want]].astype(np.float32)
    # sbipix's encoding is not sbi's to reproduce: the cost depends on the shapes only, so the
    # 58 inputs are the training set's noisy fluxes, σ and mask (19 each) and the redshift
    flux = np.load(os.path.join(d, "flux_obs_ujy.npy")).astype(np.float32)
    sigma = np.load(os.path.join(d, "sigma_ujy.npy")).astype(np.float32)
    mask = np.load(os.path.join(d, "observed.npy")).astype(np.float32)
    z = np.load(os.path.join(d, "redshift.npy")).astype(np.float32)[:, None]
    ok = (mask > 0) & np.isfinite(flux) & (sigma > 0)
    x = np.concatenate([np.where(ok, np.arcsinh(flux / 0.01), 0.0), np.where(ok, np.log(np.where(ok, sigma, 1.0)), 0.0), mask, z],
                       axis=1).astype(np.float32)
    if x.shape[1] != 58:
        sys.exit(f"expected 58 inputs, got {x.shape[1]}")
    n = min(a.train_pairs, len(x))
    th_t, x_t = torch.from_numpy(theta[:n]), torch.from_numpy(x[:n])
    lo, hi = th_t.min(0).values - 1e-3, th_t.max(0).values + 1e-3
    prior = BoxUniform(lo, hi)
    xs = torch.from_numpy(x[n : n + a.pixels]) if len(x) >= n + a.pixels else x_t[: a.pixels]
    out = {
        "sbi": sbi.__version__,
        "torch": torch.__version__,
        "threads": a.threads,
        "pixels": a.pixels,
        "draws": a.draws,
        "dim_theta": 5,
        "dim_x": 58,
        "parameters": want,
    }
    flows = {
        "nsf_5x128_8bins": dict(model="nsf", hidden_features=128, num_transforms=5, num_bins=8, tail_bound=4.0, num_blocks=1),
        "maf_5x128_2blocks": dict(model="maf", hidden_features=128, num_transforms=5, num_blocks=2),
    }
    for label, kw in flows.items():
        if label not in a.flows.split(","):
            continue
        builder = posterior_nn(**kw)
        rec = {"train_pairs": n}
        # training first (an untrained spline flow can fail nflows' inverse): seconds per epoch of
        # n pairs (10 % held out by sbi for validation), no early stopping
        inf = NPE(prior=prior, density_estimator=builder, show_progress_bars=False)
        inf.append_simulations(th_t, x_t)
        t0 = time.perf_counter()
        net = inf.train(training_batch_size=256, max_num_epochs=a.epochs, stop_after_epochs=10**6, show_train_summary=False)
        rec["train_s_per_epoch"] = (time.perf_counter() - t0) / a.epochs
        net.eval()
        with torch.no_grad():
            best = float("inf")
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                # in chunks of pixels, as sbi's sample_batched does (all 1000 × 500 at once
                # exhausts 24 GB with the MAF)
                draws = torch.cat([net.sample((a.draws,), condition=xs[k : k + a.chunk]) for k in range(0, len(xs), a.chunk)], 1)
                best = min(best, time.perf_counter() - t0)
            rec["raw_sample_ms_per_pixel"] = 1e3 * best / a.pixels
            rec["raw_draws_inside_prior"] = float(((draws >= lo) & (draws <= hi)).all(-1).float().mean())
        post = DirectPosterior(net, prior)
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            post.sample_batched((a.draws,), x=xs, show_progress_bars=False, reject_outside_prior=False)
            best = min(best, time.perf_counter() - t0)
        rec["sample_batched_ms_per_pixel"] = 1e3 * best / a.pixels
        out[label] = rec
        print(label, rec, file=sys.stderr, flush=True)
    text = json.dumps(out, indent=1)
    print(text)
    if out_path:
        with open(out_path + ".tmp", "w") as f:
            f.write(text)
        os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
