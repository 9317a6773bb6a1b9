"""The hsi-stats command line: demo, analyze, registry, explain, convert and compare.

The analysis flags are built from :class:`~hsi_stats.settings.AnalysisSettings` (names, choices, defaults and
help), so the command line always offers what the API offers. Bad input (data, files, options: an
:class:`~hsi_stats._validation.InputError` or an ``OSError``) ends with exit code 2 and one line on standard
error; a Dask cluster that fails under ``analyze --scheduler`` or ``--workers`` (its scheduler lost or unreachable,
every worker gone: a :class:`~hsi_stats._validation.ClusterError`) ends with exit code 69 and one line naming the
scheduler's address and what happened; anything else is a bug in hsi_stats and ends with the traceback, a request
to report it and exit code 70. Nothing is written before the analysis has succeeded, and every file is written
atomically; a ``--workers`` cluster started here is shut down however the command ends.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from . import __version__
from ._atomic import atomic_write_text, check_writable
from ._validation import ClusterError, InputError
from .settings import AnalysisSettings, option_kind, option_names

if TYPE_CHECKING:  # the analysis modules are imported where they run: a refused option costs no scipy import
    import pandas as pd

    from .data import HSIDataset
    from .evolution import EvolutionResult
    from .io import ShardedDataset
    from .results import HSIResult

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_CLUSTER_UNAVAILABLE = 69  # EX_UNAVAILABLE of sysexits.h: the Dask cluster failed, not the input nor hsi_stats
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h


class CommandError(InputError):
    """A user error reported as one line with exit code 2."""


# ----------------------------------------------------------------------------- pipeline
def analysis_settings(args: argparse.Namespace) -> AnalysisSettings:
    """The :class:`AnalysisSettings` given on the command line (checked once, here)."""
    return AnalysisSettings(**{name: getattr(args, name) for name in option_names()})


def _run_controls(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, batch size and progress bars (on a terminal): how to run, not what to compute."""
    return {"rng": args.seed, "batch": args.batch, "progress": sys.stderr.isatty()}


def run_analysis(dataset: HSIDataset | ShardedDataset, args: argparse.Namespace) -> HSIResult:
    """:func:`hsi_stats.analyze` with the command's options: one training step (the last by default) or, asked
    for with ``--pool-steps``, every step pooled."""
    from .results import analyze

    step = getattr(args, "step", None)
    pool_steps = bool(getattr(args, "pool_steps", False))
    if pool_steps and dataset.steps is not None and np.unique(dataset.steps).size > 1:
        print(f"hsi-stats: pooling the scenarios of {np.unique(dataset.steps).size} training steps into one analysis, "
              "as asked (--pool-steps): the numbers describe no single policy.", file=sys.stderr)
    return analyze(dataset, analysis_settings(args), step=step, pool_steps=pool_steps, **_run_controls(args))


def run_evolution(dataset: HSIDataset | ShardedDataset, args: argparse.Namespace) -> EvolutionResult | None:
    """:func:`hsi_stats.analyze_evolution` over every step when the data hold several (and are not pooled)."""
    from .evolution import analyze_evolution

    if getattr(args, "pool_steps", False) or dataset.steps is None or np.unique(dataset.steps).size < 2:
        return None
    return analyze_evolution(dataset, analysis_settings(args), trend_resamples=args.n_resamples,
                             **_run_controls(args))


def write_outputs(result: HSIResult, out_dir: Path, args: argparse.Namespace,
                  evolution: EvolutionResult | None = None) -> list[Path]:
    """Write the report in the formats asked for (none: the tables only), the tables and the registry."""
    from .outputs import write_tables

    formats = tuple(part.strip().lower() for part in args.format.split(",") if part.strip())
    if formats:
        from .report import write_report  # imported only when a report is asked for: plotting is slow to import

        return list(write_report(result, out_dir, formats=formats, evolution=evolution,
                                 allow_unvalidated=args.allow_unvalidated).values())
    return list(write_tables(result, out_dir, evolution=evolution, allow_unvalidated=args.allow_unvalidated).values())


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any computation, an output that cannot be written (a file where a folder is needed, a folder
    that cannot be written into, a converted file not named .npz)."""
    if args.command == "explain":  # prints to standard output
        return
    sharded = args.command == "convert" and args.shard_size is not None
    if args.command == "convert" and not sharded and not str(args.output).endswith(".npz"):
        raise CommandError(f"the output must be a .npz file, but {args.output!r} was given")
    if sharded and args.shard_size < 1:
        raise CommandError(f"--shard-size must be a positive number of scenarios, but {args.shard_size} was given")
    folder = args.command in ("demo", "analyze", "compare") or sharded
    flag = "--out" if args.command in ("demo", "analyze", "compare") else "--output"
    problem = check_writable(args.out if flag == "--out" else args.output, folder=folder)
    if problem:
        raise CommandError(f"{flag}: {problem}")


# ----------------------------------------------------------------------------- loading
#: Input options and the input kinds that read them: any other kind refuses them rather than ignore them.
_INPUT_OPTIONS = {"pair_by": ("logs",), "attention_key": ("logs",), "trust_pickle": ("logs", "extraction")}


def _check_input_options(args: argparse.Namespace) -> None:
    kind = "npz" if args.path else "extraction" if args.extraction else "logs"
    for name, kinds in _INPUT_OPTIONS.items():
        if getattr(args, name) not in (None, False) and kind not in kinds:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} applies to {' and '.join(kinds)} input only, but the input is "
                               f"{'an .npz file' if kind == 'npz' else 'an extraction'}; leave it out")


def load_input(args: argparse.Namespace, *, lazy: bool = False) -> tuple[HSIDataset | ShardedDataset, str]:
    """The dataset named by the input options of ``analyze``/``convert``, restricted to ``--step-range``.

    Shards are always scanned; with ``lazy``, logs and extractions are scanned too (read one file at a time).
    """
    from .io import load_extraction, load_logs, load_npz, scan

    given = [bool(args.path), bool(args.feature_dir or args.attention_dir), bool(args.extraction)]
    if sum(given) != 1:
        raise CommandError("give exactly one input: PATH.npz, or --feature-dir and --attention-dir, "
                           "or --extraction FILE")
    _check_input_options(args)
    step_range = None if args.step_range is None else tuple(args.step_range)
    if step_range is not None and step_range[0] > step_range[1]:
        raise CommandError(f"--step-range START END needs START <= END, but {step_range[0]} {step_range[1]} was "
                           "given")
    if args.feature_dir or args.attention_dir:
        if not (args.feature_dir and args.attention_dir):
            raise CommandError("--feature-dir and --attention-dir must be given together")
        options = {k: v for k, v in (("pair_by", args.pair_by), ("attention_key", args.attention_key))
                   if v is not None}
        source = f"{args.feature_dir} + {args.attention_dir}"
        if lazy:
            return scan(args.feature_dir, attention_dir=args.attention_dir, step_range=step_range,
                        trust_pickle=args.trust_pickle, **options), source
        return load_logs(args.feature_dir, args.attention_dir, step_range=step_range,
                         trust_pickle=args.trust_pickle, **options), source
    dataset: HSIDataset | ShardedDataset
    if args.path and _is_shards(str(args.path)):
        if args.command == "convert":
            raise CommandError(f"convert reads one .npz file, logs or an extraction, but {args.path!r} names shards; "
                               "analyze reads shards as they are")
        dataset, source = scan(args.path), str(args.path)
    elif args.path:
        dataset, source = load_npz(args.path), str(args.path)
    else:
        # The catalog the labels are judged against also says which features an extraction's scenarios give.
        read = scan if lazy else load_extraction
        dataset = read(args.extraction, catalog=getattr(args, "catalog", None), trust_pickle=args.trust_pickle)
        source = str(args.extraction)
    if step_range is not None:
        if dataset.steps is None:
            raise CommandError(f"--step-range needs training steps, but {source} has none")
        found = sorted(int(step) for step in np.unique(dataset.steps))
        if not any(step_range[0] <= step <= step_range[1] for step in found):
            raise CommandError(f"--step-range {step_range[0]} {step_range[1]} keeps no scenario of {source} (its "
                               f"steps: {found})")
        dataset = dataset.select(scenarios=(dataset.steps >= step_range[0]) & (dataset.steps <= step_range[1]))
    return dataset, source


def _is_shards(path: str) -> bool:
    """True when ``path`` is a folder (of ``.npz`` shards) or a glob pattern rather than one ``.npz`` file."""
    return Path(path).is_dir() or (not Path(path).is_file() and any(character in path for character in "*?["))


# ----------------------------------------------------------------------------- commands
def _written(out: Path, paths: Sequence[Path]) -> str:
    """``wrote OUT: report.html, ..., figures/ (N files)``: the files written into ``out``, folders counted."""
    names: dict[str, int] = {}
    for path in paths:
        parts = path.relative_to(out).parts
        key = parts[0] + ("/" if len(parts) > 1 else "")
        names[key] = names.get(key, 0) + 1
    listed = [name if not name.endswith("/") else f"{name} ({count} files)" for name, count in names.items()]
    return f"wrote {out}: " + ", ".join(listed)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .cluster import connect

    cluster = args.scheduler is not None or args.workers is not None
    dataset, source = load_input(args, lazy=args.stream or cluster)
    if cluster and not hasattr(dataset, "on_cluster"):
        raise CommandError(f"--scheduler and --workers reduce shards (a folder or glob of .npz shards, logs or "
                           f"extractions), but the input is one .npz file, {source}: write it as shards with "
                           f"hsi-stats convert --shard-size")
    with connect(args.scheduler, args.workers) as client:
        if client is not None and hasattr(dataset, "on_cluster"):
            dataset = dataset.on_cluster(client)
        result = run_analysis(dataset, args)
        evolution = run_evolution(dataset, args)
        # the registry's label agreement and the report's examples read the data again: while the cluster is up
        paths = write_outputs(result, Path(args.out), args, evolution=evolution)
    print(result.summary())
    if evolution is not None:
        print()
        print(evolution.summary())
    print(_written(Path(args.out), paths))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    dataset, _ = load_input(args)
    result = run_analysis(dataset, args)
    result.export_registry(args.output, allow_unvalidated=args.allow_unvalidated)
    print(result.summary())
    n_valid = int(result.heads["validated"].sum())
    print(f"wrote {args.output}: {n_valid} validated label(s) of {len(result.heads)} heads"
          + ("; unvalidated labels kept as asked" if args.allow_unvalidated else
             "; unvalidated labels written as General Context Heads"))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .data import HSIDataset
    from .explain import Explainer

    explainer = Explainer.from_registry(args.registry, allow_unvalidated=args.allow_unvalidated)
    dataset, source = load_input(args)
    if not isinstance(dataset, HSIDataset):
        raise CommandError(f"explain reads one .npz file, logs or an extraction, but {source} names shards; explain "
                           f"a shard file")
    explainer.check_data(dataset.head_names, dataset.feature_names)
    if args.scenario is not None and not 0 <= args.scenario < dataset.n_scenarios:
        raise CommandError(f"--scenario must lie in 0..{dataset.n_scenarios - 1}, but {args.scenario} was given")
    steps = None if dataset.steps is None else np.asarray(dataset.steps, dtype=np.int64)
    if args.step is not None and steps is None:
        raise CommandError(f"--step needs training steps, but {source} has none")
    if args.step is not None and args.step not in set(steps.tolist()):  # type: ignore[union-attr]
        raise CommandError(f"--step must be one of the training steps of {source} "
                           f"{sorted(set(steps.tolist()))}, but {args.step} was given")  # type: ignore[union-attr]
    wanted = args.step if args.step is not None else explainer.step
    if args.scenario is not None and steps is not None and wanted is not None and steps[args.scenario] != wanted:
        of_step = np.flatnonzero(steps == wanted)
        which = "--step asks for" if args.step is not None else "the registry describes"
        raise CommandError(f"--scenario {args.scenario} is of training step {steps[args.scenario]}, but {which} "
                           f"training step {wanted}: pass --step {steps[args.scenario]} to explain it with the "
                           f"registry of another step (each claim then says so), or a scenario of step {wanted} "
                           f"({_indices(of_step)})" if of_step.size else
                           f"--scenario {args.scenario} is of training step {steps[args.scenario]}, but {which} "
                           f"training step {wanted}, which {source} lacks (its steps: {sorted(set(steps.tolist()))}): "
                           f"pass --step {steps[args.scenario]} to explain it with the registry of another step "
                           f"(each claim then says so)")
    rows = np.arange(dataset.n_scenarios) if args.scenario is None else np.array([args.scenario])
    explanation = explainer.explain(dataset.attention[rows], {name: values[rows] for name, values in
                                                              dataset.features.items()}, dataset.mask[rows],
                                    scenarios=rows, steps=None if steps is None else steps[rows], step=args.step)
    if args.format != "text" and explanation.heading is not None:
        # the claims carry their step and note; which step was explained, and why, goes beside the table
        print(f"hsi-stats: {explanation.heading}", file=sys.stderr)
    if args.format == "text":
        print(explanation.text())
    elif args.format == "csv":
        print(explanation.claims.to_csv(index=False), end="")
    else:
        print(explanation.claims.to_json(orient="records", indent=1))
    return 0


def _indices(rows: np.ndarray, shown: int = 6) -> str:
    """``"0..119"`` for a run of indices, else the first few: ``"3, 7, 9, ..."``."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return f"{rows[0]}..{rows[-1]}" if rows.size > 1 else str(rows[0])
    return ", ".join(str(r) for r in rows[:shown]) + (", ..." if rows.size > shown else "")


def cmd_convert(args: argparse.Namespace) -> int:
    from .data import HSIDataset
    from .io import write_npz, write_shards

    dataset, _ = load_input(args, lazy=args.shard_size is not None)  # shards are written a file at a time
    if args.shard_size is None:
        if not isinstance(dataset, HSIDataset):  # load_input refuses shards for convert; this keeps it so
            raise CommandError("convert reads one .npz file, logs or an extraction")
        write_npz(dataset, args.output)
        print(f"wrote {args.output}: {dataset!r}")
    else:
        paths = write_shards(dataset, args.output, args.shard_size)
        print(f"wrote {len(paths)} shard(s) of up to {args.shard_size} scenarios into {args.output}: {dataset!r}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    if len(args.runs) < 2:
        raise CommandError(f"{args.runs[0]}: a comparison needs at least 2 run folders, but 1 was given")
    names = None if args.names is None else [n.strip() for n in args.names.split(",")]
    comparison = compare_runs(args.runs, names=names, by=args.by, min_match_stability=args.min_match_stability,
                              min_margin=args.min_margin)
    from .report.compare import write_comparison  # plotting is slow to import: only once the comparison is made

    paths = write_comparison(comparison, args.out)
    print(comparison.summary())
    print(_written(Path(args.out), list(paths.values())))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .evolution import analyze_evolution
    from .io import load_logs
    from .synthetic import DEMO_CHECKPOINTS, DEMO_EMERGENCE, generate, specialising_heads, write_driving_logs

    out = Path(args.out)
    run = generate(checkpoints=DEMO_CHECKPOINTS, heads=specialising_heads(*DEMO_EMERGENCE), rng=args.seed)
    with tempfile.TemporaryDirectory(prefix="hsi-demo-") as staging:
        feature_dir, attention_dir = Path(staging) / "features", Path(staging) / "attention"
        # The split of attention over latents and tokens is random too: drawn from the same seed, so that one
        # seed gives the same logs, and the same numbers, on every run.
        write_driving_logs(run, feature_dir, attention_dir, rng=np.random.SeedSequence((args.seed, 1)))
        dataset = load_logs(feature_dir, attention_dir, pair_by="step")
        final = dataset.select(step_range=(DEMO_CHECKPOINTS[-1], DEMO_CHECKPOINTS[-1]))
        result = run_analysis(final, args)
        evolution = analyze_evolution(dataset, analysis_settings(args), trend_resamples=args.n_resamples,
                                      **_run_controls(args))
        comparison = planted_versus_found(run.truth_frame(), result.heads)
        paths = write_outputs(result, out, args, evolution=evolution)
        atomic_write_text(out / "planted_vs_found.csv", comparison.to_csv(index=False))
        logs = out / "logs"
        for folder in (feature_dir, attention_dir):
            (logs / folder.name).mkdir(parents=True, exist_ok=True)
            for file in sorted(folder.iterdir()):
                shutil.move(file, logs / folder.name / file.name)
    print(f"hsi_stats {__version__} demo: synthetic driving logs of {len(DEMO_CHECKPOINTS)} checkpoints in {logs}, "
          "loaded back with load_logs")
    print(f"final checkpoint (step {DEMO_CHECKPOINTS[-1]}):")
    print(result.summary())
    print("\nplanted versus found:")
    print(comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{int(comparison['match'].sum())}/{len(comparison)} heads found as planted")
    print(f"\nover training (planted emergence between steps {DEMO_EMERGENCE[0]} and {DEMO_EMERGENCE[1]}):")
    print(evolution.summary())
    print(_written(out, [*paths, out / "planted_vs_found.csv"]))
    return 0


def planted_versus_found(truth: pd.DataFrame, heads: pd.DataFrame) -> pd.DataFrame:
    """Put the synthetic ground truth beside what the analysis found: one row per head, with ``match``.

    Heads are matched by position (the loaders rename them, e.g. ``other_traj/cross_attn_0:h2``). A planted
    head matches when its planted label is found and validated; a no-effect head matches when it is not
    validated and its point-estimate label is General Context.
    """
    import pandas as pd

    from .catalog import GENERAL_CONTEXT

    if len(truth) != len(heads):
        raise ValueError(f"the ground truth has {len(truth)} heads but the analysis found {len(heads)}")
    general = heads["label"].to_numpy() == GENERAL_CONTEXT
    table = pd.DataFrame({
        "head": heads["head"].to_numpy(),
        "planted_feature": truth["feature"].fillna("-").to_numpy(),
        "planted_label": truth["expected_label"].to_numpy(),
        "found_feature": np.where(general, "-", heads["label_feature"].fillna("-").to_numpy()),
        "found_label": heads["label"].to_numpy(),
        "hsi": heads["hsi"].to_numpy(),
        "validated": heads["validated"].to_numpy(dtype=bool),
    })
    is_planted = table["planted_label"] != GENERAL_CONTEXT
    found_planted = (table["found_label"] == table["planted_label"]) & table["validated"]
    found_nothing = (table["found_label"] == GENERAL_CONTEXT) & ~table["validated"]
    table["match"] = np.where(is_planted, found_planted, found_nothing)
    return table


# ----------------------------------------------------------------------------- parser
def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """One flag per option of :class:`AnalysisSettings`, its default read from ``AnalysisSettings()``."""
    defaults = AnalysisSettings()
    group = parser.add_argument_group("analysis options (see hsi_stats.settings.AnalysisSettings)")
    for name in option_names():
        kind, choices, doc = option_kind(name)
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        text = (doc.replace("%", "%%").replace("``", "").replace(" (or None)", "")
                .replace(" (or, in Python, a mapping); None for the driving catalog", ""))
        shown = "the driving catalog" if name == "catalog" and default is None else "%(default)s"
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                               help=f"{text} (default: {shown})")
            continue
        if name == "adjust" and default is None:
            default = "none"
        converter = {"int": int, "float": float}.get(kind, str.lower if choices else str)
        group.add_argument(flag, dest=name, type=converter, choices=choices, default=default,
                           metavar=None if choices else kind.upper(), help=f"{text} (default: {shown})")
    parser.add_argument("--batch", type=int, default=None, help="resamples per batch (memory only)")
    parser.add_argument("--allow-unvalidated", action="store_true",
                        help="keep unvalidated labels in the registry (default: General Context Head)")


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="html,pdf",
                        help="report formats, comma-separated: html, pdf (default: html,pdf; '' for tables only)")


def _add_step_options(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--step", type=int, default=None,
                       help="the training step to analyse when the data hold several (default: the last one)")
    steps.add_argument("--pool-steps", action="store_true",
                       help="pool the scenarios of every training step into one analysis (never done unasked)")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="an .npz file (the interchange format; see hsi-stats convert), or "
                                                "a folder or glob of .npz shards (read one shard at a time)")
    parser.add_argument("--feature-dir", help="folder of attention_log_*.pkl feature logs")
    parser.add_argument("--attention-dir", help="folder of attention_scenario_*.pkl extractions")
    parser.add_argument("--extraction", help="an extraction_*.pkl file or a folder of them")
    parser.add_argument("--pair-by", choices=("auto", "step", "order"), default=None,
                        help="log input: how feature logs and attention files are paired (default: auto = by step "
                             "when every attention file carries one, else by sorted order, with a warning)")
    parser.add_argument("--step-range", nargs=2, type=int, metavar=("START", "END"),
                        help="keep the scenarios whose training step lies in [START, END] (default: all)")
    parser.add_argument("--attention-key", default=None,
                        help="log input: attention module (or exact key) whose layers become heads "
                             "(default: other_traj)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="log and extraction input: load pickles with plain pickle (only for files you trust: "
                             "pickle runs code)")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line and a hint, exit code 2 (the full usage is what --help shows)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # the subcommands' parsers, by name

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"hsi-stats: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """Parse, and name the command whose help lists the options when an argument is not recognised."""
        parsed, unrecognised = self.parse_known_args(args, namespace)
        if unrecognised:
            owner = self.commands.get(getattr(parsed, "command", None) or "", self)
            owner.error(f"unrecognized arguments: {' '.join(unrecognised)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The ``hsi-stats`` argument parser, its subcommands' parsers in ``parser.commands`` (the docs' command-line
    page prints their help)."""
    parser = _Parser(prog="hsi-stats", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hsi_stats {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="synthetic driving run with planted heads, end to end")
    demo.add_argument("--out", default="reports/demo", help="output folder (default: reports/demo)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_analysis_options(demo)
    _add_report_options(demo)
    demo.set_defaults(handler=cmd_demo)

    analyze = commands.add_parser("analyze", help="estimate and label the heads of a run")
    _add_input_options(analyze)
    analyze.add_argument("--out", default="reports", help="output folder (default: reports)")
    analyze.add_argument("--seed", type=int, default=None, help="random seed (default: fresh, recorded)")
    _add_step_options(analyze)
    _add_analysis_options(analyze)
    _add_report_options(analyze)
    analyze.add_argument("--stream", action="store_true",
                         help="read logs or extractions one file (pair) at a time, as shards are read: memory for "
                              "one file, but every file is read again by each pass over the data (implied by "
                              "--scheduler and --workers)")
    where = analyze.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="reduce the shards (or the files of logs and extractions) on the Dask scheduler at "
                            "ADDRESS (tcp://host:port; extra hsi_stats[dask]); they must be readable at the same "
                            "path on its workers")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="reduce the shards (or the files of logs and extractions) on a Dask LocalCluster of N "
                            "worker processes started for this run")
    analyze.set_defaults(handler=cmd_analyze)

    registry = commands.add_parser("registry", help="validate the labels and export head_functions.json")
    _add_input_options(registry)
    registry.add_argument("--output", "-o", default="head_functions.json", help="the registry file to write")
    registry.add_argument("--seed", type=int, default=None, help="random seed (default: fresh, recorded)")
    _add_step_options(registry)
    _add_analysis_options(registry)
    registry.set_defaults(handler=cmd_registry)

    explain = commands.add_parser("explain", help="explain attention step by step with a registry's validated "
                                                  "labels")
    explain.add_argument("registry", help="head_functions.json (hsi-stats registry, or export_registry)")
    _add_input_options(explain)
    explain.add_argument("--scenario", type=int, default=None, metavar="I",
                         help="explain scenario I only (default: every scenario of the step explained)")
    explain.add_argument("--step", type=int, default=None, metavar="N",
                         help="data with training steps: explain the scenarios of step N, each claim noting when "
                              "the registry describes another step (default: the registry's own step, from its "
                              "_meta; every scenario when it names none)")
    explain.add_argument("--format", choices=("text", "json", "csv"), default="text",
                         help="claims in words (default), or one row per claim as JSON records or CSV")
    explain.add_argument("--allow-unvalidated", action="store_true",
                         help="accept a registry without validation evidence; every claim then says so")
    explain.set_defaults(handler=cmd_explain)

    convert = commands.add_parser("convert", help="write driving logs or extractions as the .npz file")
    _add_input_options(convert)
    convert.add_argument("--output", "-o", required=True,
                         help="the .npz file to write (with --shard-size: the folder of shards)")
    convert.add_argument("--shard-size", type=int, default=None, metavar="N",
                         help="write .npz shards of N scenarios each into the --output folder (hsi-stats analyze "
                              "FOLDER then reads one shard at a time)")
    convert.set_defaults(handler=cmd_convert)
    compare = commands.add_parser("compare", help="match the heads of several runs and count how often each function "
                                                  "replicates")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR",
                         help="analysis output folders (written by hsi-stats analyze), the first the reference")
    compare.add_argument("--out", default="reports/compare", help="output folder (default: reports/compare)")
    compare.add_argument("--names", default=None, help="comma-separated run names (default: the folder names)")
    compare.add_argument("--by", choices=("rho", "joint"), default="rho", type=str.lower,
                         help="match heads by their rho profiles or by their joint model's coefficients "
                              "(default: rho)")
    compare.add_argument("--min-match-stability", type=float, default=0.8,
                         help="least share of resamples keeping a match for it to be unambiguous (default: 0.8; "
                              "folders hold no episodes to resample, so --min-margin decides)")
    compare.add_argument("--min-margin", type=float, default=0.1,
                         help="least pair margin (total similarity lost without the pair) of an unambiguous match "
                              "when no stability is measured (default: 0.1)")
    compare.set_defaults(handler=cmd_compare)
    parser.commands = dict(commands.choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hsi-stats`` console script."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings():  # restores the caller's filters and display on the way out
            warnings.simplefilter("default")
            warnings.showwarning = _print_warning
            check_outputs(args)
            return int(args.handler(args))
    except ClusterError as exc:
        print(f"hsi-stats: cluster error: {exc}; nothing was written", file=sys.stderr)
        return EXIT_CLUSTER_UNAVAILABLE
    except (InputError, OSError) as exc:
        print(f"hsi-stats: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        traceback.print_exc()
        print(f"hsi-stats: internal error: this is a bug in hsi_stats {__version__}, not a problem with your input. "
              "Please report it with the command line and the traceback above.", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def _print_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Warnings as one line on standard error, without the source line Python would show."""
    print(f"hsi-stats: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
