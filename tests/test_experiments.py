import copy
import sys

import pytest
import torch

from grokbook import cache, experiments
from grokbook.config import (
    BudgetCfg,
    FNNCfg,
    ModularCfg,
    OptimCfg,
    RunCfg,
    TransformerCfg,
    replace,
)
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


@pytest.mark.parametrize("model", [FNNCfg(d_embed=6, width=16, depth=3),
                                   TransformerCfg(d_model=16, n_heads=2, d_mlp=32)])
def test_a_tuning_grid_as_one_stack_matches_its_runs_alone(model):
    """A whole tuning grid as one stack: members differ in learning rate and GrokFast's
    lambda, one filter serves them all, and on one thread each member matches its run alone
    (which is what ``grid`` trains) to float32 rounding: to the bit on the AVX-512 CPU this book
    was written on, not on an AMD EPYC (AVX2), whose batched products round differently."""
    from grokbook.config import GrokFastCfg

    base = replace(TARGET, model=model, budget__epochs=30,
                   grad_transform=GrokFastCfg(filter="ma", window=5))
    cells = [(lr, lamb) for lr in (1e-2, 3e-3) for lamb in (1.0, 5.0)]
    cfgs = [replace(base, optim__lr=lr, grad_transform__lamb=lamb) for lr, lamb in cells]
    assert experiments._stackable(cfgs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        stacked = experiments.train_stack(cfgs, [0] * len(cfgs), progress=False)
    finally:
        torch.set_num_threads(threads)
    grid = experiments.grid(base, {"optim__lr": [1e-2, 3e-3], "grad_transform__lamb": [1.0, 5.0]},
                            seeds=[0], progress=False)
    for cell, run in zip(cells, stacked):
        assert run.history.config["ensemble_size"] == 4
        (alone,) = grid[cell]
        assert alone.history.epoch == run.history.epoch
        for column in ("train_loss", "test_loss", "weight_norm"):
            torch.testing.assert_close(torch.tensor(run.history.column(column)),
                                       torch.tensor(alone.history.column(column)),
                                       rtol=1e-5, atol=0, msg=column)
        assert alone.key == experiments.train_run(cfgs[cells.index(cell)], 0).key


def test_a_stack_member_is_served_only_to_the_stack_that_made_it(disk_cache):
    """A stack may round otherwise than its runs alone (grokbook.engine), so the cache keys a
    member by its whole stack: the same stack again is loaded, a member in another stack is
    trained afresh."""
    cfgs = [replace(TARGET, optim__weight_decay=wd) for wd in (0.1, 1.0, 3.0)]
    first = experiments.train_stack(cfgs[:2], [0, 1], progress=False)
    cache._MEMORY.clear()
    again = experiments.train_stack(cfgs[:2], [0, 1], progress=False)
    assert all(r.cached for r in again)
    cache._MEMORY.clear()
    other = experiments.train_stack([cfgs[0], cfgs[2]], [0, 1], progress=False)
    assert not any(r.cached for r in other) and other[0].key != first[0].key


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


def test_every_run_trains_and_is_keyed_on_one_thread_whatever_torch_is_set_to():
    """A run's numbers must not depend on the reader's core count (a sum split over two
    threads rounds differently): the run is computed, and cached, on one thread, and torch's
    setting is left as it was."""
    from grokbook.train import one_thread

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cache._MEMORY.clear()
        on_two = experiments.train_run(TARGET, 4, progress=False)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        cache._MEMORY.clear()
        on_one = experiments.train_run(TARGET, 4, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert not on_one.cached and on_two.key == on_one.key
    assert on_two.history.test_loss == on_one.history.test_loss
    with one_thread():
        assert cache.machine().get("threads", 1) == 1  # no thread count on a GPU
        assert on_one.key == cache.key(experiments._spec(TARGET, 4, None, "single"))


def test_a_race_on_worker_processes_is_the_race_in_this_process_run_for_run():
    """Workers change only the time: each run is computed alone on one thread either way, and
    what they trained is found here afterwards (the disk cache is off under the tests)."""
    methods = {"GrokTransfer": experiments.GrokTransfer(WEAK, TARGET), "scratch": TARGET}
    cache._MEMORY.clear()
    here = experiments.race(methods, [0, 1, 2], workers=0, progress=False)
    cache._MEMORY.clear()
    there = experiments.race(methods, [0, 1, 2], workers=2, progress=False)
    for name in methods:
        for a, b in zip(here[name], there[name]):
            assert a.key == b.key and not b.cached and a.seed == b.seed
            assert a.history.epoch == b.history.epoch
            assert a.history.test_loss == b.history.test_loss
            assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                         b.model.state_dict().values()))
    assert there["GrokTransfer"][1].weak.history.test_loss == \
        here["GrokTransfer"][1].weak.history.test_loss
    from grokbook import sweep

    assert 2 in sweep._LOCAL  # the workers trained them, not this process
    found = experiments.cached_run(methods["GrokTransfer"], 2)
    assert found.cached and found.key == there["GrokTransfer"][2].key
    assert experiments.cached_run(replace(TARGET, optim__lr=3e-3), 2) is None
    bad = replace(TARGET, data__frac=0.999)  # leaves no test pair: fails in the worker
    with pytest.raises(RuntimeError, match=r"1 of 2 runs failed; the first: bad seed \d"):
        experiments.race({"bad": bad, "fine": replace(TARGET, optim__lr=2e-3)}, [5],
                         workers=2, progress=False)
    assert experiments.cached_run(replace(TARGET, optim__lr=2e-3), 5) is not None


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


def test_traced_and_merged_runs_race_on_workers_as_in_this_process():
    """A progress run and a merged transfer are methods too: on two worker processes they
    are the runs made here, and found here afterwards."""
    methods = {"traced": experiments.Traced(WEAK),
               "merged": experiments.Merged(experiments.GrokTransfer(WEAK, TARGET), 5)}
    cache._MEMORY.clear()
    here = experiments.race(methods, [0, 1], workers=0, progress=False)
    cache._MEMORY.clear()
    there = experiments.race(methods, [0, 1], workers=2, progress=False)
    for name in methods:
        for a, b in zip(here[name], there[name]):
            assert a.key == b.key and not b.cached
            assert a.history.test_loss == b.history.test_loss
            assert a.history.extras == b.history.extras
    assert "norm_spread" in there["traced"][0].history.extras
    assert there["merged"][1].history.epoch == [0, 5, 10]
    assert there["merged"][1].weak.key == here["merged"][1].weak.key
    for name, method in methods.items():
        found = experiments.cached_run(method, 1)
        assert found.cached and found.key == here[name][1].key
    assert isinstance(experiments.cached_run(methods["merged"], 1).model.embed, torch.nn.Embedding)
    assert experiments.cached_run(replace(methods["merged"], merge_at=4), 1) is None
    with pytest.raises(ValueError, match="callback is not supported for a Traced run"):
        experiments.run_method(methods["traced"], 0, callback=print)


def test_a_weak_run_held_here_goes_to_the_worker_with_its_job():
    """With the disk cache off a worker knows only what its job brings: a GrokTransfer job
    carries the weak run this process holds, which the worker then uses instead of training
    it again (here a weak run with a marked History, to tell the two apart)."""
    method = experiments.GrokTransfer(WEAK, TARGET)
    try:
        cache._MEMORY.clear()
        weak = experiments.train_run(WEAK, 3, progress=False)
        marked = copy.deepcopy(weak.history)
        marked.test_loss = [-1.0] * len(marked.test_loss)
        cache.remember(weak.key, marked, weak.model.state_dict())
        run = experiments.race({"GrokTransfer": method, "again": replace(method, control="random")},
                               [3], workers=2, progress=False)
        assert run["GrokTransfer"][0].weak.history.test_loss == marked.test_loss
        assert run["again"][0].weak.history.test_loss == marked.test_loss
    finally:
        cache._MEMORY.clear()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11's")
def test_a_run_that_fails_in_this_process_is_named():
    bad = replace(TARGET, data__frac=0.999)  # leaves no test pair
    with pytest.raises(ValueError) as failure:
        experiments.race({"bad": bad}, [5], workers=0, progress=False)
    assert "while training bad seed 5" in failure.value.__notes__


@pytest.mark.parametrize(("build", "message"), [
    (lambda: experiments.Merged(TARGET, 5), "method must be a GrokTransfer, got a RunCfg"),
    (lambda: experiments.Merged(experiments.GrokTransfer(WEAK, TARGET), 10),
     r"merge_at must be an integer strictly between 0 and the target's epochs \(10\), got 10"),
    (lambda: experiments.Merged(experiments.GrokTransfer(WEAK, TARGET), True), "merge_at must"),
    (lambda: experiments.Traced(WEAK, share=0), r"share must be a number in \(0, 1\]"),
    (lambda: experiments.Traced(replace(WEAK, model__embedding="one_hot")),
     "modular task with a learned embedding"),
])
def test_merged_and_traced_runs_check_their_settings_when_made(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_race_takes_seeds_per_method():
    runs = experiments.race({"a": TARGET, ("b", 2): replace(TARGET, optim__lr=3e-3)},
                            {"a": [0, 1], ("b", 2): [4]}, workers=0, progress=False)
    assert [r.seed for r in runs["a"]] == [0, 1] and [r.seed for r in runs["b", 2]] == [4]
    assert runs["b", 2][0].cfg.optim.lr == 3e-3


@pytest.mark.parametrize(("methods", "seeds", "message"), [
    ({"a": 5}, [0], "method 'a' must be a RunCfg, a GrokTransfer, a Traced or a Merged run, "
                    "got a int"),
    ({}, [0], "methods must map at least one name"),
    ({"a": TARGET}, [0, -1], "seed must be an integer in 0"),
    ({"a": TARGET}, "01", "seeds must be a sequence of integers"),
    ({"a": TARGET}, [0.5], "seed must be an integer in 0"),
    ({"a": TARGET}, {"b": [0]}, r"seeds, a dict, must have one entry per method: \['a'\]"),
    ({"a": TARGET}, {"a": [-1]}, "seed must be an integer in 0"),
])
def test_a_race_checks_its_methods_and_seeds_before_training(methods, seeds, message):
    with pytest.raises(ValueError, match=message):
        experiments.race(methods, seeds)


# ---- NeuralGrok and per-tensor normalisation through the run cache -------------------------------

TINY = RunCfg(data=DATA, model=FNNCfg(d_embed=8, width=16, depth=2),
              optim=OptimCfg(lr=1e-2, weight_decay=0.1), budget=BudgetCfg(30, eval_every=10))


def test_a_neuralgrok_run_trains_on_the_inner_split_and_is_cached(disk_cache):
    from grokbook.config import to_dict
    from grokbook.neuralgrok import NeuralGrok, NeuralGrokCfg, split_outer
    settings = NeuralGrokCfg(hidden=(8,), meta_every=2, outer_frac=0.05)
    cfg = replace(TINY, grad_transform=settings)
    first = experiments.train_run(cfg, 1, progress=False)
    data = experiments.make_data(DATA, 1)
    inner = split_outer(data, settings.outer_frac, seed=1).inner
    assert first.history.config["n_train"] == len(inner.y_train) < len(data.y_train)
    built, transform = experiments.make_transform(cfg, data, 1)
    assert isinstance(transform, NeuralGrok) and torch.equal(built.x_train, inner.x_train)
    assert len(transform.outer_y) == round(0.05 * 121) and torch.equal(built.x_test, data.x_test)
    # the same seed, the same run; the key holds the NeuralGrok settings
    cache._MEMORY.clear()
    again = experiments.train_run(cfg, 1, progress=False)
    assert again.cached and again.history == first.history and again.key == first.key
    assert cache.info()["entries"] == 1
    assert experiments._spec(cfg, 1, None, "single")["run"]["grad_transform"] == to_dict(settings)
    other = experiments.train_run(replace(cfg, grad_transform__c=0.5), 1, progress=False)
    assert not other.cached and other.key != first.key
    plain = experiments.train_run(TINY, 1, progress=False)
    assert plain.key != first.key and plain.history.config["n_train"] == len(data.y_train)
    # deterministic: trained again from nothing, bit for bit
    cache.clear()
    cache._MEMORY.clear()
    fresh = experiments.train_run(cfg, 1, progress=False)
    assert not fresh.cached and fresh.history.train_loss == first.history.train_loss
    assert fresh.history.test_acc == first.history.test_acc


def test_a_tensor_norm_run_trains_on_the_whole_training_set_and_is_cached(disk_cache):
    from grokbook.neuralgrok import TensorNormalization, TensorNormCfg
    cfg = replace(TINY, grad_transform=TensorNormCfg(c=0.5))
    first = experiments.train_run(cfg, 0, progress=False)
    data = experiments.make_data(DATA, 0)
    assert first.history.config["n_train"] == len(data.y_train)
    built, transform = experiments.make_transform(cfg, data, 0)
    assert built is data and isinstance(transform, TensorNormalization) and transform.c == 0.5
    cache._MEMORY.clear()
    again = experiments.train_run(cfg, 0, progress=False)
    assert again.cached and again.history == first.history
    assert experiments.train_run(TINY, 0, progress=False).key != first.key


def test_neuralgrok_runs_in_a_stack_a_grid_and_a_race_one_by_one():
    from grokbook.neuralgrok import NeuralGrokCfg
    cfg = replace(TINY, grad_transform=NeuralGrokCfg(outer_frac=0.05),
                  budget__epochs=10)
    stacked = experiments.train_stack([cfg, cfg], [0, 1], progress=False)
    alone = experiments.train_run(cfg, 1, progress=False)
    assert stacked[1].key == alone.key and stacked[1].history == alone.history
    raced = experiments.race({"NeuralGrok": cfg, "plain": replace(cfg, grad_transform=None)},
                             [0], progress=False)
    assert raced["NeuralGrok"][0].key == stacked[0].key
    assert raced["NeuralGrok"][0].history.config["n_train"] < (
        raced["plain"][0].history.config["n_train"])


def test_a_run_whose_outer_split_would_be_empty_fails_before_training():
    from grokbook.neuralgrok import NeuralGrokCfg
    cfg = replace(TINY, grad_transform=NeuralGrokCfg(outer_frac=1e-3))
    with pytest.raises(ValueError, match="outer_frac=0.001 leaves an empty outer split"):
        experiments.train_run(cfg, 0, progress=False)
