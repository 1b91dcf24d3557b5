"""Chapter 4's regime map (grokbook.regime): each side re-tuned per cell by the tuning table's
rule, the summary's ratios, bounds and verdicts, the table's validation, the committed map,
a small map end to end and the command."""

import dataclasses
import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from grokbook import cli, profiles, regime, tuning
from grokbook.config import replace
from grokbook.experiments import GrokTransfer, run_method


def _runs(method, epochs, *, p=59, frac=0.5, role="reported", lr=1e-2, wd=1.0, budget=100.0,
          seed0=0):
    """Rows of ``method`` in one cell: one per entry of ``epochs`` (None: never in budget)."""
    rows = []
    for i, e in enumerate(epochs):
        rows.append({"role": role, "p": p, "frac": frac, "lr": lr, "weight_decay": wd,
                     "task": "add", "method": method, "seed": seed0 + i,
                     "reached": e is not None, "epochs": e, "epochs_budget": budget,
                     "time_gap": e, "time_gap_budget": budget,
                     "seconds": None if e is None else e / 10, "seconds_budget": budget / 10,
                     "gflop": e, "gflop_budget": budget, "weak_gflop": 0.0})
    return rows


def test_each_side_tries_its_own_best_settings_of_the_tuning_table():
    P = profiles.load("transfer", "book")
    for method in regime.METHODS:
        ranked = tuning.ranked_cells("transfer", "book", "add", method)
        chosen = regime.candidates(P, method)
        assert len(chosen) == P.regime["candidates"]
        assert chosen[0] == tuning.best("transfer", "book", "add", method)
        assert chosen == list(zip(ranked.lr.head(len(chosen)),
                                  ranked.weight_decay.head(len(chosen))))
    paper = profiles.load("transfer", "paper")
    assert regime.candidates(paper, "scratch") == [(paper.scratch["add"].optim.lr,
                                                    paper.scratch["add"].optim.weight_decay)]
    with pytest.raises(ValueError, match="method must be one of scratch, GrokTransfer"):
        regime.candidates(P, "GrokFast")


def test_a_cell_changes_the_data_of_the_weak_model_and_both_targets():
    P = profiles.load("transfer", "book")
    methods = regime.methods_at(P, 59, 0.2)
    transfer = methods["GrokTransfer"]
    assert isinstance(transfer, GrokTransfer)
    for cfg in (methods["scratch"], transfer.weak, transfer.target):
        assert (cfg.data.p, cfg.data.frac, cfg.data.op) == (59, 0.2, "add")
    assert methods["scratch"].model == P.scratch["add"].model
    assert transfer.weak.model == P.weak["add"].model


def test_the_best_setting_of_a_cell_follows_the_tuning_rule():
    rows = (_runs("scratch", [50, 60, None], role="tuning", lr=1e-2, wd=1.0)
            + _runs("scratch", [40, None, None], role="tuning", lr=3e-2, wd=3.0)
            + _runs("GrokTransfer", [30, 30, 90], role="tuning", lr=1e-2, wd=0.3)
            + _runs("GrokTransfer", [30, 30, 40], role="tuning", lr=3e-2, wd=0.3))
    best = regime.best_settings(regime._typed(rows))
    # a median on a never-run ranks last; equal medians: the smaller mean wins
    assert best == {(59, 0.5, "scratch"): (1e-2, 1.0), (59, 0.5, "GrokTransfer"): (3e-2, 0.3)}


def test_the_summary_gives_ratios_their_bounds_and_verdicts():
    rows = (_runs("scratch", [80, 90, 100, 85, 95], p=59)
            + _runs("GrokTransfer", [20, 25, 30, 22, 28], p=59)
            + _runs("scratch", [None] * 5, p=97)
            + _runs("GrokTransfer", [40, 50, 60, 45, 55], p=97)
            + _runs("scratch", [40, 60, 50, 45, 55], frac=0.3)
            + _runs("GrokTransfer", [30, None, 70, 40, 60], frac=0.3)
            + _runs("scratch", [None, None, 40], frac=0.1)
            + _runs("GrokTransfer", [None, 50, None], frac=0.1))
    s = regime.summary(regime._typed(rows), "epochs").set_index(["p", "frac"])
    assert math.isnan(s.loc[(59, 0.1), "ratio"])  # neither median reached: no ratio
    assert (s.loc[(59, 0.1), "ratio_bound"], s.loc[(59, 0.1), "verdict"]) == ("?", "tie")
    assert s.loc[(59, 0.5), "ratio"] == pytest.approx(90 / 25)
    assert (s.loc[(59, 0.5), "ratio_bound"], s.loc[(59, 0.5), "verdict"]) == ("=", "GrokTransfer")
    assert s.loc[(97, 0.5), "ratio"] == pytest.approx(100 / 50)
    assert s.loc[(97, 0.5), "ratio_bound"] == ">="  # scratch never: the ratio is at least 2
    assert s.loc[(97, 0.5), "verdict"] == "GrokTransfer"
    assert s.loc[(59, 0.3), "verdict"] == "tie"
    assert (s.loc[(59, 0.3), "GT_k"], s.loc[(59, 0.3), "GT_n"]) == (4, 5)
    text = regime.shown(s.reset_index()).loc[(97, 0.5)]
    assert text["scratch reached"] == "0 of 5" and text["scratch median"].startswith(">100")
    assert (text["scratch / GrokTransfer"], text["surely cheaper"]) == ("≥2x", "GrokTransfer")
    grid = regime.ratio_grid(s.reset_index())
    assert list(grid.index) == [0.5, 0.3, 0.1] and list(grid.columns) == [59, 97]
    assert regime.shown(s.reset_index()).loc[(59, 0.1), "scratch / GrokTransfer"] == (
        "neither reached")
    with pytest.raises(ValueError, match="unit must be one of"):
        regime.summary(regime._typed(rows), "steps")
    with pytest.raises(ValueError, match="no GrokTransfer runs"):
        regime.summary(regime._typed(_runs("scratch", [1, 2])), "epochs")


def test_tables_round_trip_and_bad_ones_are_refused(tmp_path):
    table = regime._typed(_runs("scratch", [10, None]) + _runs("GrokTransfer", [5, 7]))
    path = regime.write(table, tmp_path / "map.csv", "grokbook regime --profile ci")
    assert path.read_text().splitlines()[1] == "# made by: grokbook regime --profile ci"
    pd.testing.assert_frame_equal(regime.read(path), table)
    assert regime.made_by(path) == ["grokbook regime --profile ci"]
    for change, message in ((lambda t: t.drop(columns="frac"), "columns"),
                            (lambda t: t.assign(role="final"), "role 'final'"),
                            (lambda t: t.assign(method="plain"), "method 'plain'"),
                            (lambda t: pd.concat([t, t.iloc[:1]]), "appears twice"),
                            (lambda t: t.assign(lr=[1e-2, 3e-2, 1e-2, 1e-2]),
                             "more than one setting")):
        bad = tmp_path / "bad.csv"
        change(table).to_csv(bad, index=False)
        with pytest.raises(ValueError, match=message):
            regime.read(bad)


def test_the_committed_map_is_the_book_profiles_and_a_run_of_it_reproduces():
    """The committed table holds every cell of the book's grid, tuning and reported runs at the
    profile's seeds, each side at one of its candidates; one of its runs, re-run here, reaches
    95% test within two evaluation intervals of the table's epoch (other CPUs round
    differently)."""
    P = profiles.load("transfer", "book")
    table = regime.read(regime.COMMITTED)
    cells = {(p, f) for p in P.regime["ps"] for f in P.regime["fracs"]}
    reported = table[table.role == "reported"]
    assert set(zip(reported.p, reported.frac)) == cells
    assert set(reported.seed) == set(P.seeds)
    assert set(table[table.role == "tuning"].seed) == set(tuning.TUNING_SEEDS)
    for method in regime.METHODS:
        rows = reported[reported.method == method]
        assert set(zip(rows.lr, rows.weight_decay)) <= set(regime.candidates(P, method))
        assert len(rows) == len(cells) * len(P.seeds)
    assert regime.best_settings(table[table.role == "tuning"]) == {
        (int(p), float(f), m): (float(lr), float(wd))
        for (p, f, m, lr, wd), _ in reported.groupby(["p", "frac", "method", "lr",
                                                      "weight_decay"])}
    row = reported[(reported.method == "scratch") & reported.reached].sort_values(
        "epochs").iloc[0]
    method = tuning.at(regime.methods_at(P, int(row.p), float(row.frac))["scratch"],
                       float(row.lr), float(row.weight_decay))
    again = run_method(method, int(row.seed), progress=False).history.first_epoch()
    assert again is not None
    assert abs(again - row.epochs) <= 2 * method.budget.eval_every


def _tiny(P):
    """``P`` shrunk to one cell, one candidate per side, two seeds and short budgets."""
    return dataclasses.replace(
        P, seeds=(0, 1), regime={**P.regime, "ps": (47,), "fracs": (0.5,), "candidates": 1},
        target={t: replace(r, budget__epochs=200) for t, r in P.target.items()},
        scratch={t: replace(r, budget__epochs=200) for t, r in P.scratch.items()},
        weak={t: replace(r, budget__epochs=300) for t, r in P.weak.items()})


def test_a_small_map_end_to_end():
    P = _tiny(profiles.load("transfer", "ci"))
    table = regime.regime_table(P, workers=0, progress=False)
    assert list(table.columns) == list(regime._columns())
    assert len(table) == 2 * len(tuning.TUNING_SEEDS) + 2 * len(P.seeds)
    tuned = table[table.role == "tuning"]
    assert (tuned.epochs_budget == tuning.BUDGETS[("transfer", "ci")]).all()
    reported = table[table.role == "reported"]
    assert (reported.epochs_budget == 200).all()
    assert (reported[reported.method == "GrokTransfer"].weak_gflop > 0).all()
    for method in ("scratch", "GrokTransfer"):  # each row at the setting it trained at
        candidates = set(regime.candidates(P, method))
        mine = table[table.method == method]
        assert set(zip(mine.lr, mine.weight_decay)) <= candidates
        assert len(candidates & set(zip(mine.lr, mine.weight_decay))) >= 1
    s = regime.summary(table)
    assert len(s) == 1 and s.verdict.iloc[0] in ("GrokTransfer", "scratch", "tie")
    assert regime.log2_ratio(s).shape == (1, 1)


def test_a_map_reuses_the_tuning_runs_an_earlier_map_holds_and_trains_the_rest(monkeypatch,
                                                                             tmp_path):
    P = _tiny(profiles.load("transfer", "ci"))
    first = regime.regime_table(P, workers=0, progress=False)
    path = regime.write(first, tmp_path / "map.csv", "grokbook regime --profile ci")
    earlier = regime.check_reusable(path, "ci")  # through the CSV, as the command reads it
    dropped = first[first.role == "tuning"].index[0]
    trained = []
    real = regime._run_cell
    monkeypatch.setattr(regime, "_run_cell", lambda cell: trained.append(cell) or real(cell))
    again = regime.regime_table(P, workers=0, progress=False, reuse=earlier.drop(dropped))
    reported = first[first.role == "reported"]
    assert sorted((c[0], c[4], c[8]) for c in trained) == sorted(
        [("tuning", first.loc[dropped, "method"], int(first.loc[dropped, "seed"]))]
        + [("reported", m, int(s_)) for m, s_ in zip(reported.method, reported.seed)])
    timing = ["seconds", "seconds_budget"]
    pd.testing.assert_frame_equal(again.drop(columns=timing), first.drop(columns=timing),
                                  rtol=1e-5)
    trained.clear()
    regime.regime_table(P, workers=0, progress=False,  # another budget: another profile's
                        reuse=earlier.assign(epochs_budget=earlier.epochs_budget + 1))
    assert len(trained) == len(first)
    regime.write(first, path, "grokbook regime --profile book")
    with pytest.raises(ValueError, match="reuse must be a map made with --profile ci"):
        regime.check_reusable(path, "ci")


def test_the_map_figures_frame_only_sure_differences():
    from grokbook import plots

    rows = (_runs("scratch", [80, 90, 100, 85, 95], p=59)
            + _runs("GrokTransfer", [20, 25, 30, 22, 28], p=59)
            + _runs("scratch", [40, 60, 50, 45, 55], p=97)
            + _runs("GrokTransfer", [30, None, 70, 40, 60], p=97)
            + _runs("scratch", [None] * 5, p=97, frac=0.2)
            + _runs("GrokTransfer", [None] * 5, p=97, frac=0.2))
    s = regime.summary(regime._typed(rows), "epochs")
    fig, (left, right) = plt.subplots(1, 2)
    plots.plot_regime(left, s, "epochs")
    framed = [p for p in left.patches if p.get_linewidth() == 2]
    assert len(framed) == 1 and framed[0].get_xy() == (0, 0)  # rows: 0.5, then 0.2
    texts = [t.get_text() for t in left.texts]
    assert "3.6x\n5/5 · 5/5" in texts and "0.83x\n4/5 · 5/5" in texts
    assert "neither\n0/5 · 0/5" in texts
    plots.plot_regime_costs(right, s, "epochs")
    assert len(right.get_legend().get_texts()) == 4
    plt.close(fig)


def test_the_regime_command_writes_the_table_with_the_command_on_top(tmp_path, monkeypatch,
                                                                     capsys):
    seen = {}

    def fake(P, *, workers, scheduler, progress, reuse):
        seen.update(profile=P.name, seeds=P.seeds, workers=workers, scheduler=scheduler,
                    reused=None if reuse is None else len(reuse))
        return regime._typed(_runs("scratch", [10]) + _runs("GrokTransfer", [5]))

    real = regime.regime_table
    monkeypatch.setattr(regime, "regime_table", fake)
    out = tmp_path / "map.csv"
    assert cli.main(["regime", "--profile", "ci", "--seed-offset", "3", "--workers", "0",
                     "--quiet", "--out", str(out)]) == 0
    assert seen == {"profile": "ci", "seeds": tuple(range(3, 8)), "workers": 0,
                    "scheduler": None, "reused": None}
    assert "# made by: grokbook regime --profile ci --seed-offset 3\n" in out.read_text()
    assert "2 runs" in capsys.readouterr().out
    again = tmp_path / "again.csv"
    assert cli.main(["regime", "--profile", "ci", "--workers", "0", "--quiet", "--out",
                     str(again), "--reuse", str(out)]) == 0
    assert seen["reused"] == 2
    assert f"# made by: grokbook regime --profile ci --reuse {out}" in again.read_text()
    # The real map: a bad scheduler is refused before any run trains.
    monkeypatch.setattr(regime, "regime_table", real)
    assert cli.main(["regime", "--profile", "ci", "--scheduler", "localhost:8786", "--quiet",
                     "--out", str(tmp_path / "never.csv")]) == 2
    assert "scheduler must be a Dask address" in capsys.readouterr().err
    assert not (tmp_path / "never.csv").exists()


def test_the_findings_count_what_the_summary_says():
    P = profiles.load("transfer", "book")
    table = regime.read(regime.COMMITTED)
    lines = regime.findings(table, P)
    s = regime.summary(table, "seconds")
    cells = len(s)
    sure = {v: int((s.verdict == v).sum()) for v in ("GrokTransfer", "scratch")}
    assert lines[1].startswith(f"- In seconds, the weak model's included, GrokTransfer is surely "
                               f"cheaper in {sure['GrokTransfer']} of {cells} cells and tuned "
                               f"scratch in {sure['scratch']};")
    assert any(f"own point (p = {P.p}, {P.frac:.0%} train)" in line for line in lines)
