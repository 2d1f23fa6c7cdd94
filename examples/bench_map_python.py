"""Benchmark: the Python path against the command line on the same map (issue: Python adds
≤ 10 % over the CLI). Each repetition runs, as separate processes and alternating,

    sbipix map --cube CUBE --redshift Z --snr-min S --out TMP          (the CLI)
    python -c "import sbipix; sbipix.Model.load('default').map_cube(CUBE, redshift=Z, snr_min=S, out=TMP)"

so both pay process start, model load, the PPC model, sampling and writing maps.fits/png/json.
Prints the median wall times and their ratio.

    python examples/bench_map_python.py CUBE [--redshift 3] [--snr-min 2] [--reps 5] [--cli target/release/sbipix]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cube")
    ap.add_argument("--redshift", type=float, default=3.0)
    ap.add_argument("--snr-min", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cli", default="target/release/sbipix")
    a = ap.parse_args()
    cli_t, py_t = [], []
    with tempfile.TemporaryDirectory() as d:
        cli = [a.cli, "map", "--cube", a.cube, "--redshift", str(a.redshift), "--snr-min", str(a.snr_min), "--out", f"{d}/cli"]
        code = (
            "import sbipix; m = sbipix.Model.load('default'); "
            f"r = m.map_cube({a.cube!r}, redshift={a.redshift}, snr_min={a.snr_min}, out={d + '/py'!r}); "
            "print(r.summary['n_pixels'])"
        )
        py = [sys.executable, "-c", code]
        subprocess.run(cli, check=True, capture_output=True)  # warm the caches (default model, data)
        for _ in range(a.reps):
            for cmd, acc in ((cli, cli_t), (py, py_t)):
                t0 = time.perf_counter()
                r = subprocess.run(cmd, check=True, capture_output=True, text=True)
                acc.append(time.perf_counter() - t0)
        npix = r.stdout.strip()
    c, p = statistics.median(cli_t), statistics.median(py_t)
    print(f"{npix} pixels, 500 draws, PPC on; {a.reps} repetitions each, alternating")
    print(f"CLI    median {c:.3f} s  (all: {', '.join(f'{t:.2f}' for t in cli_t)})")
    print(f"Python median {p:.3f} s  (all: {', '.join(f'{t:.2f}' for t in py_t)})")
    print(f"Python / CLI = {p / c:.3f}")


if __name__ == "__main__":
    main()
