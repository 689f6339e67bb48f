"""Plots for scripts/bench: latency against batch size and against SR size, one line per
case and OpenZFS version, from the results-zfs<version>.csv files in the given directory."""
import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "results-zfs*.csv"))):
    version = os.path.basename(path)[len("results-zfs"):-len(".csv")]
    with open(path) as f:
        for r in csv.DictReader(f):
            r["version"] = version
            rows.append(r)


def plot(section, xlabel, title, name):
    fig, ax = plt.subplots(figsize=(8, 5))
    series = {}
    for r in rows:
        if r["section"] != section:
            continue
        series.setdefault((r["version"], r["case"]), []).append(
            (int(r["param"]), int(r["median_us"]) / 1000, int(r["min_us"]) / 1000, int(r["max_us"]) / 1000))
    for (version, case), pts in sorted(series.items()):
        pts.sort()
        xs = [p[0] for p in pts]
        med = [p[1] for p in pts]
        err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
        ax.errorbar(xs, med, yerr=err, marker="o", capsize=3, label=f"{case} (OpenZFS {version})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median latency, ms (bars: min..max)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    print(f"bench-plot: {os.path.join(out, name)}")


plot("batch", "zvols snapshotted", "Snapshot latency against batch size (emulated VM)", "bench-batch.png")
plot("scale", "volumes in the SR (plus as many snapshot VDIs)", "Listing and stat against SR size (emulated VM)", "bench-scale.png")
