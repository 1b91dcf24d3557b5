import pytest
import torch

from grokbook import cache, experiments
from grokbook.config import BudgetCfg, FNNCfg, ModularCfg, OptimCfg, RunCfg

CFG = RunCfg(data=ModularCfg("add", 13, 0.5), model=FNNCfg(d_embed=4, width=8, depth=2),
             optim=OptimCfg(lr=1e-2, weight_decay=1.0), budget=BudgetCfg(20, eval_every=10))


def test_a_cached_run_is_loaded_with_its_model(disk_cache):
    first = experiments.train_run(CFG, 0, progress=False)
    cache._MEMORY.clear()  # a new process: only the disk is left
    again = experiments.train_run(CFG, 0, progress=False)
    assert not first.cached and again.cached
    assert again.history == first.history
    for a, b in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)
    assert cache.info()["entries"] == 1
    assert experiments.train_run(CFG, 1, progress=False).key != first.key


def test_a_corrupt_entry_is_reported_and_recomputed(disk_cache):
    run = experiments.train_run(CFG, 0, progress=False)
    cache._MEMORY.clear()
    for path in disk_cache.rglob("*.npz"):
        path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    with pytest.warns(UserWarning, match="does not match its checksum"):
        again = experiments.train_run(CFG, 0, progress=False)
    assert not again.cached and again.history.test_acc == run.history.test_acc
    cache._MEMORY.clear()
    for path in disk_cache.rglob("*.json"):
        path.write_text("{not json")
    with pytest.warns(UserWarning, match="not valid JSON"):
        assert not experiments.train_run(CFG, 0, progress=False).cached


def test_the_key_covers_settings_and_code_version(disk_cache, monkeypatch):
    spec = {"run": "x", "seed": 0}
    assert cache.key(spec) == cache.key(dict(spec))
    assert cache.key(spec) != cache.key({**spec, "seed": 1})
    before = cache.key(spec)
    monkeypatch.setattr(cache, "code_version", lambda: "another")
    assert cache.key(spec) != before


def test_the_key_covers_the_cpu_model(monkeypatch):
    """A cache shared by machines of two CPU models (a cluster's home folder) serves neither
    the other's runs: their BLAS libraries may round batched products differently."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU the key names the GPU instead")
    spec = {"run": "x", "seed": 0}
    before = cache.key(spec)
    other = cache.cpu_model() + " (another)"
    monkeypatch.setattr(cache, "cpu_model", lambda: other)
    assert cache.machine()["cpu"] == other and cache.key(spec) != before


def test_a_stack_cached_on_other_threads_is_trained_afresh(disk_cache):
    """Two threads round a sum differently from one, so the thread count is in the key. A single
    run trains on one thread whatever torch is set to (test_experiments checks it); a stack
    trains on the caller's threads, so a stack cached on one thread is served only to one
    thread, where training it again would give the same bits."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = experiments.train_stack([CFG, CFG], [0, 1], progress=False)
        cache._MEMORY.clear()
        assert all(r.cached for r in experiments.train_stack([CFG, CFG], [0, 1],
                                                             progress=False))
        torch.set_num_threads(2)
        cache._MEMORY.clear()
        two = experiments.train_stack([CFG, CFG], [0, 1], progress=False)
        assert not any(r.cached for r in two) and two[0].key != one[0].key
        assert cache.machine()["threads"] == 2
    finally:
        torch.set_num_threads(threads)


def test_off_stores_nothing_and_clear_empties(disk_cache, monkeypatch):
    experiments.train_run(CFG, 0, progress=False)
    assert cache.clear() == 1 and cache.info()["entries"] == 0
    monkeypatch.setenv("GROKBOOK_CACHE", "off")
    assert cache.location() is None
    experiments.train_run(CFG, 0, progress=False)
    assert not disk_cache.exists() or not any(disk_cache.rglob("*.json"))


def test_an_interrupted_cached_run_resumes_from_its_checkpoint(disk_cache):
    from grokbook.train import TrainingInterrupted

    long = replace_budget(CFG, 200)
    whole = experiments.train_run(long, 0, progress=False)
    cache.clear()
    seen = []

    def stop_at_100(history):
        seen.append(history.epoch[-1])
        if history.epoch[-1] == 100:
            raise KeyboardInterrupt

    original = experiments.CHECKPOINT_SECONDS
    experiments.CHECKPOINT_SECONDS = 1e-9  # checkpoint after every epoch
    try:
        with pytest.raises(TrainingInterrupted):
            experiments.train_run(long, 0, progress=False, callback=stop_at_100)
        assert any((disk_cache / "checkpoints").glob("*.npz"))
        again = experiments.train_run(long, 0, progress=False)
    finally:
        experiments.CHECKPOINT_SECONDS = original
    assert again.history.test_loss == whole.history.test_loss
    assert not any((disk_cache / "checkpoints").glob("*.npz"))


def replace_budget(cfg, epochs):
    from grokbook.config import replace

    return replace(cfg, budget__epochs=epochs)


def test_the_code_version_follows_training_code_not_presentation(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "grokbook"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    version = cache.code_version.__wrapped__
    before = version()
    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# a style edit\n")
    assert version() == before
    profile = copy / "profiles" / "grokking.py"
    profile.write_text(profile.read_text() + "\n# a profile edit: settings are in the keys\n")
    assert version() == before
    train = copy / "train.py"
    source = train.read_text()
    first_def = source.index('    """', source.index("\ndef "))  # a function's docstring
    train.write_text(source[:first_def] + '    """Reworded."""\n    # a comment\n'
                     + source[first_def:] + "\n# a comment at the end\n")
    assert version() == before  # docstrings and comments are not code
    train.write_text(source + "\nLIMIT = 1\n")
    assert version() != before


def test_training_never_imports_the_presentation_or_selection_modules():
    import subprocess
    import sys

    training = sorted(f"grokbook.{path.stem}" for path in cache.PACKAGE.glob("*.py")
                      if cache.is_training_source(path.name))
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]: importlib.import_module(name)\n"
            "print(' '.join(m for m in sys.modules if m.startswith('grokbook.')))")
    loaded = subprocess.run([sys.executable, "-c", code, *training], capture_output=True,
                            text=True, check=True).stdout.split()
    shown = {f"grokbook.{name.removesuffix('.py').rstrip('/')}"
             for name in cache.PRESENTATION + cache.SELECTION if name != "cache.py"}
    assert len(loaded) >= len(training) - 1
    assert shown.isdisjoint(loaded), shown & set(loaded)
    assert not any(m.startswith("grokbook.profiles.") for m in loaded)
