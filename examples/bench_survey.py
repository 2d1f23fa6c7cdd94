"""Benchmark of survey mode: a synthetic survey of N galaxies (`sbipix demo --survey N`) mapped
by the CLI (one process, all cores) and by Dask with 1 and 2 single-threaded worker processes.
Prints galaxies per minute and pixels per second for each, and the projected CPU time for the
2 million pixels of the SBIPIX JADES sample.

    python examples/bench_survey.py [--n 100] [--cli target/release/sbipix] [--work /tmp/sbipix-bench-survey]
"""

import argparse
import csv
import os
import shutil
import subprocess
import time


def pixels(out):
    with open(os.path.join(out, "galaxies.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(int(r["n_pixels"]) for r in rows if r["status"] == "ok"), sum(r["status"] == "ok" for r in rows), len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--cli", default=os.path.abspath("target/release/sbipix"))
    ap.add_argument("--work", default="/tmp/sbipix-bench-survey")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    subprocess.run([a.cli, "demo", "--survey", str(a.n), "--out", f"{a.work}/demo"], check=True, capture_output=True)
    manifest = f"{a.work}/demo/manifest.csv"
    results = []
    t0 = time.perf_counter()
    subprocess.run([a.cli, "survey", "--manifest", manifest, "--out", f"{a.work}/cli"], capture_output=True)
    results.append(("CLI, 1 process × 2 threads", time.perf_counter() - t0, f"{a.work}/cli", 2))

    # Dask: single-threaded workers (RAYON_NUM_THREADS=1 in each), so 1 → 2 workers is 1 → 2 cores
    os.environ["RAYON_NUM_THREADS"] = "1"
    import sbipix
    from dask.distributed import Client, LocalCluster

    for nw in (1, 2):
        with LocalCluster(n_workers=nw, threads_per_worker=1, processes=True, dashboard_address=None) as cl, Client(cl) as c:
            c.run(lambda: __import__("sbipix")._model_in_process("default") and None)  # workers up, model loaded
            t0 = time.perf_counter()
            sbipix.survey(manifest, f"{a.work}/dask{nw}", client=c)
            results.append((f"Dask, {nw} worker{'s' if nw > 1 else ''} × 1 thread", time.perf_counter() - t0, f"{a.work}/dask{nw}", nw))
    print(f"synthetic survey: {a.n} galaxies (32×32 pixels), 500 draws per pixel, PPC on")
    print(f"{'run':32} {'wall s':>8} {'galaxies':>9} {'pixels':>8} {'gal/min':>8} {'pix/s':>8} {'CPU-h for 2e6 px':>17}")
    for name, dt, out, cores in results:
        px, ok, n = pixels(out)
        print(f"{name:32} {dt:8.1f} {ok:>4}/{n:<4} {px:8d} {60 * n / dt:8.1f} {px / dt:8.0f} {2e6 / (px / dt) * cores / 3600:17.2f}")


if __name__ == "__main__":
    main()
