"""Plots for scripts/bench: latency against batch size, against SR size, and CBT's routes
against the % of blocks changed, one line per case and OpenZFS version, from the
results-zfs<version>.csv files in the given directory (and the CBT plugin's peak RSS from
cbt-figures-zfs<version>.csv)."""
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


def plot(section, xlabel, title, name, prefix="", ax=None, skip=()):
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(8, 5))
    series = {}
    for r in rows:
        if r["section"] != section or not r["case"].startswith(prefix):
            continue
        if any(r["case"][len(prefix):].startswith(s) for s in skip):
            continue
        series.setdefault((r["version"], r["case"][len(prefix):]), []).append(
            (int(r["param"]), int(r["median_us"]) / 1000, int(r["min_us"]) / 1000, int(r["max_us"]) / 1000))
    # One colour per case and one line style per version, so that a case reads across versions.
    cases = sorted({c for _, c in series})
    versions = sorted({v for v, _ in series})
    for (version, case), pts in sorted(series.items()):
        pts.sort()
        xs = [p[0] for p in pts]
        med = [p[1] for p in pts]
        err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
        ax.errorbar(xs, med, yerr=err, marker="o", capsize=3, label=f"{case} (OpenZFS {version})",
                    color=f"C{cases.index(case) % 10}", linestyle=["-", "--", ":", "-."][versions.index(version) % 4])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median latency, ms (bars: min..max)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if own:
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        print(f"bench-plot: {os.path.join(out, name)}")


def plot_cbt(name):
    """Left: time against % of a fully written 1 GiB zvol rewritten, per route and version.
    Right: the plugin's peak RSS per disk and version (it must stay flat as disks grow)."""
    if not any(r["section"] == "cbt" for r in rows):
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 2]})
    plot("cbt", "% of the 64 KiB blocks rewritten between A and B",
         "CBT on a fully written 1 GiB zvol (emulated VM, caches dropped)", name,
         prefix="1 GiB fully written: ", ax=left, skip=("part: ",))
    figures = {}
    for path in sorted(glob.glob(os.path.join(out, "cbt-figures-zfs*.csv"))):
        version = os.path.basename(path)[len("cbt-figures-zfs"):-len(".csv")]
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["changed_pct"] == "1":
                    figures.setdefault(r["disk"], {})[version] = (
                        int(r["peak_rss_kib_median"]) / 1024, int(r["bits_set"]), int(r["written_a_to_b"]))
    disks = list(figures)
    versions = sorted({v for d in figures.values() for v in d})
    width = 0.8 / max(len(versions), 1)
    for i, v in enumerate(versions):
        xs = [j + i * width for j in range(len(disks))]
        ys = [figures[d].get(v, (0, 0, 0))[0] for d in disks]
        bars = right.bar(xs, ys, width, label=f"OpenZFS {v}")
        for b, d in zip(bars, disks):
            _, bits, written = figures[d].get(v, (0, 0, 0))
            right.annotate(f"{bits} bits\n/{written} written", (b.get_x() + b.get_width() / 2, b.get_height()),
                           ha="center", va="bottom", fontsize=6)
    right.set_xticks([j + width * (len(versions) - 1) / 2 for j in range(len(disks))])
    right.set_xticklabels([d.replace(", ", ",\n").replace(" (", "\n(") for d in disks], fontsize=6)
    right.set_ylabel("plugin peak RSS, MiB (median)")
    right.set_title("Volume.list_changed_blocks: peak RSS, 1 % changed")
    right.grid(True, axis="y", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    print(f"bench-plot: {os.path.join(out, name)}")


plot("batch", "zvols snapshotted", "Snapshot latency against batch size (emulated VM)", "bench-batch.png")
plot("scale", "volumes in the SR (plus as many snapshot VDIs)", "Listing and stat against SR size (emulated VM)", "bench-scale.png")
plot_cbt("bench-cbt.png")
