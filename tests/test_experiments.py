import pytest
import torch

from grokbook import cache, experiments
from grokbook.config import BudgetCfg, FNNCfg, ModularCfg, OptimCfg, RunCfg, replace
from grokbook.models import make_model
from grokbook.tasks import modular_arithmetic
from grokbook.train import train

DATA = ModularCfg("add", 11, 0.5)
WEAK = RunCfg(data=DATA, model=FNNCfg(d_embed=3, width=8, depth=2),
              optim=OptimCfg(lr=1e-2, weight_decay=0.1),
              budget=BudgetCfg(10, eval_every=5, stop_acc=0.99, stop_patience=1))
TARGET = RunCfg(data=DATA, model=FNNCfg(d_embed=6, width=16, depth=3),
                optim=OptimCfg(lr=1e-2, weight_decay=0.1), budget=BudgetCfg(10, eval_every=5))


def test_train_run_is_the_training_loop_on_the_settings():
    run = experiments.train_run(TARGET, 3, progress=False)
    model = make_model("fnn", 11, 11, seed=3, d_embed=6, width=16, depth=3)
    direct = train(model, modular_arithmetic("add", 11, 0.5, seed=3), epochs=10, eval_every=5,
                   lr=1e-2, weight_decay=0.1, progress=False)
    assert run.history.test_loss == direct.test_loss


def test_a_stack_member_follows_the_same_curve_as_alone():
    cache._MEMORY.clear()
    cfgs = [replace(TARGET, optim__weight_decay=wd) for wd in (0.1, 1.0)]
    stacked = experiments.train_stack(cfgs, [0, 1], progress=False)
    for cfg, seed, run in zip(cfgs, [0, 1], stacked):
        alone = experiments.train_run(cfg, seed, progress=False)
        assert torch.allclose(torch.tensor(run.history.test_loss),
                              torch.tensor(alone.history.test_loss), rtol=1e-4)


def test_grid_runs_every_cell_per_seed():
    grid = experiments.grid(TARGET, {"optim__weight_decay": [0.1, 1.0], "data__frac": [0.4, 0.6]},
                            seeds=[0, 1], progress=False)
    assert set(grid) == {(wd, f) for wd in (0.1, 1.0) for f in (0.4, 0.6)}
    assert all(len(runs) == 2 for runs in grid.values())
    assert grid[1.0, 0.6][1].cfg.data.frac == 0.6


def test_the_race_trains_weak_transfer_and_scratch_on_the_same_seeds():
    runs = experiments.race({"GrokTransfer": experiments.GrokTransfer(WEAK, TARGET),
                             "scratch": TARGET}, [0, 1], progress=False)
    assert [r.seed for r in runs["GrokTransfer"]] == [0, 1]
    transferred = runs["GrokTransfer"][0]
    assert transferred.weak is not None and transferred.weak.cfg == WEAK
    assert transferred.model.embed.a.shape == (11, 3)
    assert runs["scratch"][0].weak is None
    cost = experiments.cost(runs["GrokTransfer"])
    assert cost.n == 2


def test_the_random_control_keeps_the_shape_and_norm_of_a():
    method = experiments.GrokTransfer(WEAK, TARGET)
    weak = experiments.train_run(WEAK, 0, progress=False)
    start = experiments.Start(weak, control="random")
    a = start.embedding(0)
    real = experiments.Start(weak).embedding(0)
    assert a.shape == real.shape and torch.isclose(a.norm(), real.norm())
    assert not torch.equal(a, real)
    assert replace(method, control="random").run(0, progress=False).key != method.run(
        0, progress=False).key


def test_merged_transfer_reads_as_one_run():
    run = experiments.merged_transfer(experiments.GrokTransfer(WEAK, TARGET), 0, merge_at=5,
                                      progress=False)
    assert run.history.epoch == [0, 5, 10]
    assert isinstance(run.model.embed, torch.nn.Embedding)


@pytest.mark.parametrize(("methods", "seeds", "message"), [
    ({"a": 5}, [0], "method 'a' must be a RunCfg or a GrokTransfer, got a int"),
    ({}, [0], "methods must map at least one name"),
    ({"a": TARGET}, [0, -1], "seed must be an integer in 0"),
    ({"a": TARGET}, "01", "seeds must be a sequence of integers"),
    ({"a": TARGET}, [0.5], "seed must be an integer in 0"),
])
def test_a_race_checks_its_methods_and_seeds_before_training(methods, seeds, message):
    with pytest.raises(ValueError, match=message):
        experiments.race(methods, seeds)
