"""Write the result tables of the documentation from the studies' JSON files, so that the pages never drift from them.

The tables used to live in the README; they now sit in the documentation's pages (``docs/``), each between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` markers in the page that discusses it (:data:`PAGES`):

``calibration``, ``corrections``, ``rates`` (``docs/statistics/calibration.md``)
    the tables and notes of ``benchmarks/results/calibration.json`` (its ``markdown`` entry, which
    ``calibration.py`` builds from the same numbers), ``corrections.json`` (the corrections on a family whose
    features vary unequally) and ``rates.json`` (coverage of the intervals of rates near 0 and 1);
``bands`` (``docs/statistics/focus.md``)
    a summary of ``benchmarks/results/bands.json``: for the ``within`` estimator, the rho (and band) of planted
    heads that put a share m of their attention on the target, per correlation and kind of feature, and the focus;
``trend`` (``docs/guides/evolution.md``)
    the table and notes of ``benchmarks/results/trend.json`` (its ``markdown`` entry);
``joint``, ``joint-cost`` (``docs/statistics/joint.md``)
    the table and notes of ``benchmarks/results/joint.json`` (the joint model's calibration study), and from
    ``benchmarks/results/bench_joint.json`` the default analysis against ``joint=False``, with its passes;
``ablation`` (``docs/statistics/ablation.md``)
    the tables and notes of ``benchmarks/results/ablation.json`` (coverage of the ablation intervals, error rate of
    the closed-loop tests);
``scale`` (``docs/guides/shards.md``)
    from ``benchmarks/results/bench_scale.json``: per number of scenarios (and mode), the seconds of ``analyze`` and
    ``estimate``, the peak resident memory, its overhead above the loaded data and the data's size, then the growth
    exponents and the time ratios of consecutive sizes.

Run by the ``calibration``, ``bands``, ``trend``, ``joint``, ``ablation``, ``bench`` and ``scale`` nox sessions after
their study; ``python benchmarks/readme_tables.py NAME...`` rewrites the named tables, and without names all of them,
from the files as they are (skipping a table whose file does not exist yet). ``--docs DIR`` writes into another copy
of the documentation's sources.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: Each table's page, relative to the documentation's sources (``docs/``).
PAGES = {"calibration": "statistics/calibration.md", "corrections": "statistics/calibration.md",
         "rates": "statistics/calibration.md", "bands": "statistics/focus.md", "trend": "guides/evolution.md",
         "joint": "statistics/joint.md", "joint-cost": "statistics/joint.md", "ablation": "statistics/ablation.md",
         "scale": "guides/shards.md"}
BANDS_SHARES = (0.3, 0.5, 0.7, 0.9)
CORRELATIONS = ("rank-feature", "spearman", "pearson")
KINDS = (("indicator", "indicator"), ("ttc", "lowest TTC"))


def calibration_block(record: dict[str, Any]) -> str:
    """The table and its notes, as the study wrote them (calibration, trend).

    A ``|`` inside a cell (``h1|ttc``, a head and its feature) is escaped, so that it does not split the cell.
    """
    return re.sub(r"(?<=\w)\|(?=\w)", r"\\|", str(record["markdown"]).strip())


def _band(value: float | None) -> str:
    from hsi_stats.labels import strength_band

    return "undefined" if value is None else f"{value:+.2f} {strength_band(value)}"


def bands_block(record: dict[str, Any]) -> str:
    """rho and band of the planted feature for heads putting a share m on their target (``within``, all n)."""
    heads = record["heads"]
    run = record["runs"]["all"]
    within = run["estimates"]["within"]

    def index(feature: str, *, mass: float | None = None, kind: str = "mass") -> int:
        return next(i for i, h in enumerate(heads) if h["feature"] == feature and h["kind"] == kind
                    and (mass is None or abs(h["mass"] - mass) < 1e-9) and h.get("rest", "dirichlet") == "dirichlet")

    def cell(i: int, correlation: str) -> str:
        result = within[correlation]
        text = _band(result["planted_rho"][i])
        if not result["primary_is_planted"][i]:
            text += f" ({result['primary_feature'][i]} named)"
        return text

    header = ["share m on the target", *[f"{label}: {c}" for _, label in KINDS for c in CORRELATIONS], "focus (both)"]
    rows = []
    for mass in BANDS_SHARES:
        cells = [cell(index(kind, mass=mass), c) for kind, _ in KINDS for c in CORRELATIONS]
        rows.append([f"{mass:.1f}", *cells, f"{run['planted_focus'][index('ttc', mass=mass)]:.2f}"])
    graded = next((i for i, h in enumerate(heads) if h["kind"] == "proportional"), None)
    if graded is not None:
        rows.append(["graded (∝ 1/TTC rank)", *["—"] * len(CORRELATIONS),
                     *[cell(graded, c) for c in CORRELATIONS], f"{run['planted_focus'][graded]:.2f}"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    world = record["world"]
    return "\n".join(lines) + (f"\n\n{world['scenarios']} scenarios of 3–8 entities, `within` estimator; the rest of "
                               "the attention on the other entities at random (flat Dirichlet); every number in "
                               "`benchmarks/results/bands.md` and `bands.json`.")


def scale_block(record: dict[str, Any]) -> str:
    """Time and memory of ``analyze`` per number of scenarios (and mode), then the growth over the sizes."""
    rows = record["rows"]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    episodes = {d["n_scenarios"]: d["n_episodes"] for d in record["data"]}
    header = ["scenarios", "episodes", *(["mode"] if len(modes) > 1 else []), "`analyze` (s)", "`estimate` (s)",
              "peak memory (GiB)", "overhead (GiB)", "data (GiB)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"{r['n_scenarios']:,}", f"{episodes[r['n_scenarios']]:,}", *([r["mode"]] if len(modes) > 1 else []),
                 f"{r['analyze_seconds']:.2f}", f"{r['estimate_seconds']:.2f}", f"{r['peak_rss_gib']:.2f}",
                 f"{r['overhead_gib']:.2f}", f"{r['data_gib']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    settings, cpus = record["settings"], record["environment"]["cpus"]
    during = "`estimate` and `analyze`" if rows[0]["peak_covers"] == "estimate + analyze" else \
        "loading, `estimate` and `analyze`"
    shape = record["data"][0]
    notes = [f"`n_resamples={settings['resamples']}`, {settings['steps']} scenarios per episode, "
             f"{shape['n_slots']} slots, {shape['n_heads']} heads, {shape['n_features']} features; each measurement "
             f"in a fresh process (best of {settings['repeats']}) on {cpus} CPUs. Peak memory: the process's peak "
             f"resident set size during {during}, interpreter and data included; overhead: the peak minus the "
             f"resident size after loading the data. Loading: {record['loading']}."]
    for mode in modes:
        growth = record["growth"][mode]
        if growth["analyze_exponent"] is None:
            continue
        ratios = ", ".join(f"time({r['to']:,}) / time({r['from']:,}) = {r['analyze_time_ratio']:.1f}"
                           for r in growth["consecutive_ratios"])
        notes.append(f"{'Growth' if len(modes) == 1 else f'{mode}: growth'} exponent (slope of log time on log "
                     f"scenarios, 1 = linear) {growth['analyze_exponent']:.2f} for `analyze` and "
                     f"{growth['estimate_exponent']:.2f} for `estimate`; {ratios}.")
    return "\n".join(lines) + "\n\n" + " ".join(notes)


def joint_cost_block(record: dict[str, Any]) -> str:
    """The default analysis against ``joint=False`` at the reference workload's 200,000 scenarios."""
    best, passes, joint = record["best"], record["passes"], record["joint"]
    return (f"| analysis | seconds (best of {record['repeats']}) | passes over the data |\n|---|---|---|\n"
            f"| `analyze(joint=False)` | {best['marginal']:.2f} | {passes['marginal']} |\n"
            f"| `analyze()` (the joint model too) | {best['joint']:.2f} | {passes['joint']} |\n\n"
            f"{record['scenarios']:,} scenarios ({record['episodes']:,} episodes of 50 steps), {record['heads']} "
            f"heads, {record['features']} features, {record['slots']} slots, `n_resamples={record['n_resamples']}`, "
            f"on {record['environment']['cpus']} CPUs: the joint model makes the analysis "
            f"{record['ratio']:.2f} times as long. Its fit started from the first {joint['start_scenarios']:,} "
            f"scenarios and took {joint['passes']} passes, the first shared with every other reduction "
            "(`benchmarks/results/bench_joint.json`).")


def replace_block(text: str, name: str, block: str, where: str = "the page") -> str:
    """``text`` with the content between the ``name`` markers replaced by ``block``."""
    pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{where} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", type=str,
                        help="which tables to rewrite: calibration, bands, trend, scale, joint, joint-cost, ablation, "
                             "corrections, rates "
                             "(default: all that have results)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs",
                        help="the documentation's sources, whose pages hold the tables (default: docs/)")
    args = parser.parse_args(argv)
    builders = {"calibration": calibration_block, "bands": bands_block, "trend": calibration_block,
                "scale": scale_block, "joint": calibration_block, "joint-cost": joint_cost_block,
                "ablation": calibration_block, "corrections": calibration_block, "rates": calibration_block}
    files = {name: RESULTS / f"{name}.json" for name in builders} | {"scale": RESULTS / "bench_scale.json",
                                                                     "joint-cost": RESULTS / "bench_joint.json"}
    unknown = sorted(set(args.names) - set(builders))
    if unknown:
        parser.error(f"the tables are {list(builders)}, but {unknown} was given")
    missing = [str(files[name]) for name in args.names if not files[name].is_file()]
    if missing:
        parser.error(f"no results to write the table from: {missing} do not exist")
    args.names = args.names or [name for name in builders if files[name].is_file()]
    for page in dict.fromkeys(PAGES[name] for name in args.names):
        path = args.docs / page
        text = path.read_text(encoding="utf-8")
        names = [name for name in args.names if PAGES[name] == page]
        for name in names:
            record = json.loads(files[name].read_text(encoding="utf-8"))
            text = replace_block(text, name, builders[name](record), str(path))
        path.write_text(text, encoding="utf-8")
        print(f"rewrote the {', '.join(names)} table(s) of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
