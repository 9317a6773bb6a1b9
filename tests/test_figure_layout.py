"""Figures read in a paper: for 3, 8 and 72 heads every figure is 3.5 or 7.0 in wide and at most 9 in tall, no
text is smaller than 7 pt, falls outside the figure or overlaps another, and heads carry their short names; the
report writes each figure on its own as PDF and SVG, the same bytes every time."""

from __future__ import annotations

import dataclasses
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from hsi_stats import HSIResult, analyze, write_report
from hsi_stats.ablation import AblationEffects, AblationEpisodes
from hsi_stats.report import (
    ablation_plot,
    attention_distributions,
    attention_vs_feature,
    evolution_plot,
    focus_plot,
    forest_plot,
    hsi_bars,
    null_distributions,
    odds_ratio_plot,
    rho_heatmap,
)
from hsi_stats.report.figures import COLUMN_WIDTH, MAX_HEIGHT, MIN_FONT, PAGE_WIDTH, paper_style, save_figure
from hsi_stats.report.figures._common import as_figure
from hsi_stats.report.naming import short_head_names
from hsi_stats.synthetic import default_heads, generate

#: Bounding boxes may touch by this many pixels (anti-aliasing), no more.
TOLERANCE = 1.0


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _layered(n_layers: int, rng: int, n_episodes: int, n_resamples: int, n_heads: int = 8) -> HSIResult:
    """Heads named as a loaded model names them (``other_traj/cross_attn_<l>:h<k>``), shortened to ``L<l>.H<k>``."""
    specs = default_heads()[:n_heads]
    heads = tuple(dataclasses.replace(spec, name=f"other_traj/cross_attn_{layer}:h{k}")
                  for layer in range(n_layers) for k, spec in enumerate(specs))
    data = generate(n_episodes=n_episodes, n_steps=6, heads=heads, rng=rng).dataset
    return analyze(data, n_resamples=n_resamples, rng=0)


@pytest.fixture(scope="module")
def three() -> HSIResult:
    return analyze(generate(n_episodes=12, n_steps=6, heads=default_heads()[:3], rng=0).dataset, n_resamples=99,
                   rng=0)


@pytest.fixture(scope="module")
def eight() -> HSIResult:
    return _layered(1, rng=0, n_episodes=12, n_resamples=99)


@pytest.fixture(scope="module")
def many() -> HSIResult:
    return _layered(9, rng=3, n_episodes=16, n_resamples=199)


def _per_step(result: HSIResult) -> pd.DataFrame:
    rows = []
    for k, step in enumerate((0, 1000, 2000)):
        for head in result.heads.itertuples():
            hsi = float(head.hsi) * (0.5 + 0.25 * k)
            rows.append({"step": step, "head": head.head, "hsi": hsi, "ci_low": hsi - 0.05, "ci_high": hsi + 0.05,
                         "primary_feature": head.primary_feature, "label": head.label,
                         "validated": bool(head.validated) and k > 0})
    return pd.DataFrame(rows)


def _scatter(result: HSIResult):
    labelled = result.heads[result.heads["label"] != "General Context Head"].iloc[0]
    return attention_vs_feature(result, labelled["head"], labelled["label_feature"])


def _ablation(result: HSIResult):
    """The ablation figure of made-up effects for every head of ``result`` (and a named set), open and closed loop."""
    rng = np.random.default_rng(0)
    heads = [str(h) for h in result.heads["head"]]
    names = [*heads, "all lane heads"]
    changed = rng.uniform(0.0, 0.6, len(names))
    opened = pd.DataFrame({"head": names, "changed": changed, "changed_ci_low": changed * 0.8,
                           "changed_ci_high": changed * 1.2 + 0.01, "tv": changed / 2, "tv_ci_low": changed / 3,
                           "tv_ci_high": changed / 1.5})
    delta = rng.normal(-2.0, 3.0, len(heads))
    crash = rng.uniform(-0.2, 0.4, len(heads))
    closed = pd.DataFrame({"head": ["none", *heads], "return_delta": [np.nan, *delta],
                           "return_delta_ci_low": [np.nan, *(delta - 3)],
                           "return_delta_ci_high": [np.nan, *(delta + 3)],
                           "crash_delta": [np.nan, *crash], "crash_delta_ci_low": [np.nan, *(crash - 0.2)],
                           "crash_delta_ci_high": [np.nan, *(crash + 0.2)]})
    effects = AblationEffects(opened, None, {}, {}, {}, "zero", 0.95, 999, 40)
    episodes = AblationEpisodes(closed, pd.DataFrame(), pd.DataFrame())
    return ablation_plot(effects, episodes, short=short_head_names(heads))


DRAW: dict[str, Callable[[HSIResult], object]] = {
    "heatmap": rho_heatmap,
    "hsi": hsi_bars,
    "focus": focus_plot,
    "forest": forest_plot,
    "scatter": _scatter,
    "distributions": attention_distributions,
    "null": null_distributions,
    "odds-ratios": odds_ratio_plot,
    "evolution": lambda result: evolution_plot(_per_step(result), threshold=result.settings.threshold),
    "ablation": _ablation,
}


# ------------------------------------------------------------------------------------------------ helpers
def _drawn_tick_labels(ax) -> list[Text]:
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        span = high - low
        for tick in axis.get_major_ticks():
            if low - 1e-9 * span <= tick.get_loc() <= high + 1e-9 * span:
                out += [label for label in (tick.label1, tick.label2) if label.get_visible()]
    return out


def _shown_texts(fig: Figure) -> list[Text]:
    """Every text the figure shows: titles, axis and tick labels, annotations, legends, figure titles."""
    texts: list[Text] = [*fig.texts]
    for extra in (getattr(fig, "_suptitle", None), getattr(fig, "_supxlabel", None),
                  getattr(fig, "_supylabel", None)):
        if extra is not None:
            texts.append(extra)
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        texts += _drawn_tick_labels(ax)
        legend = ax.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
    unique = {id(t): t for t in texts}.values()  # a figure's suptitle is also one of its texts
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _layout_problems(obj: object) -> list[str]:
    """What reads badly in the figure of ``obj``, drawn at its own size: small text, text outside the figure,
    overlapping text, a width that is not a paper's column or a height above the cap."""
    fig = as_figure(obj)
    with paper_style():
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    width, height = fig.get_size_inches()
    if not any(np.isclose(width, w) for w in (COLUMN_WIDTH, PAGE_WIDTH)):
        problems.append(f"width {width:.2f} in")
    if height > MAX_HEIGHT + 1e-9:
        problems.append(f"height {height:.2f} in")
    texts = _shown_texts(fig)
    boxes = np.array([t.get_window_extent(renderer).extents for t in texts]).reshape(-1, 4)
    page = fig.bbox
    for text, (x0, y0, x1, y1) in zip(texts, boxes, strict=True):
        if text.get_fontsize() < MIN_FONT - 1e-9:
            problems.append(f"{text.get_text()!r} at {text.get_fontsize():g} pt")
        if x0 < page.x0 - TOLERANCE or y0 < page.y0 - TOLERANCE or x1 > page.x1 + TOLERANCE or \
                y1 > page.y1 + TOLERANCE:
            problems.append(f"{text.get_text()!r} outside the figure")
    overlap_x = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    overlap_y = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    clash = np.triu((overlap_x > TOLERANCE) & (overlap_y > TOLERANCE), k=1)
    for i, j in zip(*np.nonzero(clash), strict=True):
        problems.append(f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}")
    return problems


def _check_all(result: HSIResult) -> None:
    problems = {}
    for name, draw in DRAW.items():
        obj = draw(result)
        fig = as_figure(obj)
        found = _layout_problems(obj)
        if found:
            problems[name] = found[:5] + ([f"... {len(found) - 5} more"] if len(found) > 5 else [])
        plt.close(fig)
    assert not problems, problems


# ------------------------------------------------------------------------------------------------ layout
def test_three_heads_read_well(three):
    _check_all(three)


def test_eight_heads_read_well(eight):
    _check_all(eight)


@pytest.mark.slow
def test_seventy_two_heads_read_well(many):
    _check_all(many)


@pytest.mark.parametrize("name", ["heatmap", "hsi", "focus", "forest", "distributions", "null", "odds-ratios",
                                  "evolution", "ablation"])
def test_heads_are_named_by_their_short_names(eight, name):
    fig = as_figure(DRAW[name](eight))
    shown = " ".join(t.get_text() for t in _shown_texts(fig))
    short = short_head_names(list(eight.heads["head"]))
    assert all(s in shown for s in short.values())
    assert not any(full in shown for full in short)


def test_the_check_finds_overlapping_and_small_text():
    _, ax = plt.subplots(figsize=(3.5, 2.0), layout="constrained")
    ax.set_xticks(range(30), [f"other_traj/cross_attn_0:h{k}" for k in range(30)], fontsize=8)
    ax.set_title("small", fontsize=5)
    problems = _layout_problems(ax)
    assert any("overlaps" in p for p in problems)
    assert any("at 5 pt" in p for p in problems)


# ------------------------------------------------------------------------------------------------ files
def _svg_text(data: bytes) -> str:
    root = ET.fromstring(data)
    return " ".join("".join(e.itertext()) for e in root.iter("{http://www.w3.org/2000/svg}text"))


def _check_report_figures(result: HSIResult, tmp_path: Path) -> None:
    first = write_report(result, tmp_path / "a", formats="html")
    second = write_report(result, tmp_path / "b", formats="html")
    figures = sorted(name for name in first if name.startswith("figures/"))
    keys = {name.removeprefix("figures/").rsplit(".", 1)[0] for name in figures}
    assert {"heatmap", "hsi", "focus", "forest", "distributions", "null"} <= keys
    assert figures == sorted(name for name in second if name.startswith("figures/"))
    short = short_head_names(list(result.heads["head"]))
    for name in figures:
        data = first[name].read_bytes()
        assert data == second[name].read_bytes(), name  # reproducible bytes
        assert "/" not in name.removeprefix("figures/") and ":" not in name
        if name.endswith(".pdf"):
            assert data.startswith(b"%PDF")
            assert b"/FontFile2" in data  # TrueType (Type 42), editable
        else:
            text = _svg_text(data)
            if name.rsplit("/", 1)[1].split(".")[0] in ("heatmap", "hsi", "focus", "forest", "distributions",
                                                        "null"):
                assert all(s in text for s in short.values()), name
    scatter = [k for k in keys if k.startswith("scatter-")]
    assert scatter and all(k.removeprefix("scatter-") in short.values() for k in scatter)


def test_report_writes_every_figure_as_pdf_and_svg(eight, tmp_path):
    _check_report_figures(eight, tmp_path)


@pytest.mark.slow
def test_report_figures_of_many_heads(many, tmp_path):
    _check_report_figures(many, tmp_path)


@pytest.mark.parametrize("suffix", [".pdf", ".svg", ".png", ".PDF"])
def test_save_figure_picks_the_format_from_the_suffix(three, tmp_path, suffix):
    target = tmp_path / f"bars{suffix}"
    save_figure(hsi_bars(three), target)
    data = target.read_bytes()
    kind = suffix.lower()
    if kind == ".pdf":
        assert data.startswith(b"%PDF")
    elif kind == ".svg":
        assert "h0" in _svg_text(data)
    else:
        assert data.startswith(b"\x89PNG")
    second = tmp_path / f"again{suffix}"
    save_figure(hsi_bars(three), second)
    assert second.read_bytes() == data
    assert plt.get_fignums() == []


def test_paper_style_leaves_the_global_state_alone(three):
    before = dict(matplotlib.rcParams)
    save_figure(null_distributions(three), Path(pytest.importorskip("tempfile").mkdtemp()) / "null.svg")
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


def test_forest_layout_is_checked(three):
    with pytest.raises(ValueError, match="The value for `layout` must be one of"):
        forest_plot(three, layout="grid")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="The value for `ax` must be None with layout='features'"):
        forest_plot(three, ax=ax, layout="features")
    facets = forest_plot(three, layout="FEATURES")
    assert sum(a.get_visible() for a in facets.figure.axes) == three.pairs["feature"].nunique()


@pytest.mark.slow
def test_many_heads_go_into_more_panels_not_smaller_text(many):
    for draw in (rho_heatmap, hsi_bars, focus_plot, attention_distributions):
        ax = draw(many)
        assert len([a for a in ax.figure.axes if a.get_visible() and a.get_label() != "<colorbar>"]) >= 2
    assert len(list(itertools.chain(null_distributions(many).axes))) >= len(many.heads)
