import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokbook.config import (
    RULES,
    BudgetCfg,
    DigitsCfg,
    FNNCfg,
    GrokFastCfg,
    Invalid,
    ModularCfg,
    OptimCfg,
    ParityCfg,
    RunCfg,
    TransformerCfg,
    VectorFNNCfg,
    fingerprint,
    from_dict,
    replace,
    to_dict,
    validate,
)


@pytest.mark.parametrize("make, message", [
    (lambda: OptimCfg(lr=-1), r"OptimCfg.lr must be a finite number in \(0, 1e\+30\], got -1"),
    (lambda: OptimCfg(lr=math.nan), "OptimCfg.lr must be a finite number"),
    (lambda: OptimCfg(weight_decay=-0.1), "OptimCfg.weight_decay must be"),
    (lambda: OptimCfg(warmup_steps=-5), "OptimCfg.warmup_steps must be a non-negative integer"),
    (lambda: OptimCfg(betas=(0.9,)), "OptimCfg.betas must be two numbers"),
    (lambda: OptimCfg(optimizer="adam"), "OptimCfg.optimizer must be one of 'adamw', 'sgd'"),
    (lambda: BudgetCfg(epochs=1.5), "BudgetCfg.epochs must be a non-negative integer"),
    (lambda: BudgetCfg(eval_every=0), "BudgetCfg.eval_every must be a positive integer"),
    (lambda: BudgetCfg(stop_acc=1.5), r"BudgetCfg.stop_acc must be a finite number in \(0, 1\]"),
    (lambda: ModularCfg(frac="0.5"), "ModularCfg.frac must be a finite number"),
    (lambda: ModularCfg(op="pow"), "ModularCfg.op must be one of"),
    (lambda: ModularCfg(p=True), "ModularCfg.p must be an integer >= 2"),
    (lambda: FNNCfg(init_scale=math.inf), "FNNCfg.init_scale must be a finite number"),
    (lambda: FNNCfg(embedding="glove"), "FNNCfg.embedding must be one of 'learned'"),
    (lambda: TransformerCfg(d_model=30, n_heads=4), "multiple of n_heads"),
    (lambda: ParityCfg(n_bits=3, k=4), "ParityCfg.k must be at most n_bits"),
    (lambda: GrokFastCfg(lamb=math.nan), "GrokFastCfg.lamb must be a finite number"),
    (lambda: GrokFastCfg(filter="sma"), "GrokFastCfg.filter must be one of 'ema', 'ma'"),
    (lambda: RunCfg(model=VectorFNNCfg()), "VectorFNNCfg for ParityCfg or DigitsCfg data"),
    (lambda: DigitsCfg(n_train=0), "DigitsCfg.n_train must be"),
    (lambda: DigitsCfg(n_train=1500, n_test=400), "n_train \\+ n_test must be at most 1797"),
    (lambda: RunCfg(data=DigitsCfg(), model=VectorFNNCfg(), loss="logistic"),
     "RunCfg.loss must be 'cross_entropy' for DigitsCfg data"),
    (lambda: RunCfg(data=ParityCfg(), model=VectorFNNCfg()),
     "RunCfg.loss must be 'logistic' for ParityCfg data"),
    (lambda: RunCfg(loss="mse"), "RunCfg.loss must be one of"),
])
def test_bad_settings_name_the_field_and_what_is_allowed(make, message):
    with pytest.raises(Invalid, match=message):
        make()


def test_numbers_are_normalised_so_equal_settings_hash_alike():
    assert OptimCfg(lr=1, weight_decay=1) == OptimCfg(lr=1.0, weight_decay=1.0)
    assert fingerprint(OptimCfg(lr=1)) == fingerprint(OptimCfg(lr=1.0))
    assert fingerprint(OptimCfg(lr=1)) != fingerprint(OptimCfg(lr=2))


def test_replace_changes_nested_fields_and_validates():
    run = RunCfg()
    changed = replace(run, optim__lr=3e-3, budget__epochs=5, data__p=31)
    assert (changed.optim.lr, changed.budget.epochs, changed.data.p) == (3e-3, 5, 31)
    assert run.optim.lr == OptimCfg().lr  # values, not references
    with pytest.raises(Invalid, match="unknown field.*lrr.*known fields: lr, weight_decay"):
        replace(run, optim__lrr=1)
    with pytest.raises(Invalid, match="unknown field.*colour"):
        replace(run, colour="red")
    with pytest.raises(Invalid, match="OptimCfg.lr must be"):
        replace(run, optim__lr=0)


def test_settings_round_trip_through_plain_data():
    run = RunCfg(data=ModularCfg("mul", 31, 0.4), model=TransformerCfg(d_model=32),
                 grad_transform=GrokFastCfg("ma", window=20))
    assert from_dict(to_dict(run)) == run
    with pytest.raises(Invalid, match="unknown field.*speed.*for OptimCfg"):
        from_dict({"kind": "optim", "speed": 3})
    with pytest.raises(Invalid, match="kind must be one of"):
        from_dict({"kind": "rocket"})


def test_a_prime_modulus_where_the_operation_needs_one():
    with pytest.raises(Invalid, match="ModularCfg.p must be prime for op 'mul', got 8"):
        ModularCfg("mul", 8)
    with pytest.raises(Invalid, match="settings data must be a dict"):
        from_dict([("kind", "optim")])


@given(st.sampled_from(sorted(RULES)), st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
    st.text(max_size=3), st.lists(st.floats(), max_size=2)))
def test_every_rule_accepts_or_names_the_setting(rule, value):
    """Whatever a user passes, a rule returns a value or raises Invalid naming the setting:
    never a TypeError, never a non-finite number let through."""
    try:
        checked = validate(rule, value)
    except Invalid as error:
        assert str(error).startswith(f"{rule} must be")
    else:
        assert checked is None or math.isfinite(checked)


# ---- gradient transforms: GrokFast, NeuralGrok, per-tensor normalisation ------------------------

def test_a_grokfast_run_serialises_and_hashes_as_before_neuralgrok():
    # The spec's hash is part of every run-cache key (and the tuning table's runs): pinned.
    run = RunCfg(grad_transform=GrokFastCfg())
    assert to_dict(run)["grad_transform"] == {"kind": "grokfast", "filter": "ema",
                                              "alpha": 0.98, "lamb": 2.0, "window": 100}
    assert fingerprint(run) == "3fb22913e07e05a0144c958dcd8a43dc6a4a08a2291b56930042b63c54fb244a"
    assert fingerprint(RunCfg()) == (
        "6d8d3157db4975c85027f21393dd6ee0bf0a7f83382139faa9cf0773b03f7983")
    assert RunCfg(grad_transform={"filter": "ma", "window": 5}).grad_transform == GrokFastCfg(
        "ma", window=5)  # a dict without kind is GrokFast, as it always was


def test_neuralgrok_and_tensor_norm_runs_round_trip_tagged_by_kind():
    from grokbook.neuralgrok import NeuralGrokCfg, TensorNormCfg
    for transform in (NeuralGrokCfg(hidden=(8, 4), c=0.5, meta_every=2, outer_frac=0.05),
                      TensorNormCfg(c=0.3, max_norm=None), GrokFastCfg("ma", window=7)):
        run = RunCfg(grad_transform=transform)
        data = to_dict(run)
        assert data["grad_transform"]["kind"] == transform.kind
        assert from_dict(data) == run and type(from_dict(data).grad_transform) is type(transform)
        assert from_dict(data).grad_transform == transform
        assert replace(run, grad_transform=None).grad_transform is None
    run = RunCfg(grad_transform=NeuralGrokCfg())
    assert replace(run, grad_transform__c=0.7).grad_transform == NeuralGrokCfg(c=0.7)
    assert fingerprint(run) != fingerprint(replace(run, grad_transform__meta_every=8))
    assert fingerprint(run) != fingerprint(RunCfg(grad_transform=TensorNormCfg()))


@pytest.mark.parametrize("transform, message", [
    ({"kind": "neuralgrok", "c": 0}, r"RunCfg.grad_transform: NeuralGrokCfg.c must be a finite "
                                     r"number in \(0, inf\), got 0"),
    ({"kind": "neuralgrok", "meta_every": 0}, "NeuralGrokCfg.meta_every must be a positive"),
    ({"kind": "neuralgrok", "outer_frac": 1.0}, "NeuralGrokCfg.outer_frac must be"),
    ({"kind": "neuralgrok", "T": 4}, "unknown field.* T for NeuralGrokCfg"),
    ({"kind": "tensornorm", "max_norm": 0.0}, "TensorNormCfg.max_norm must be"),
    ({"kind": "tensornorm", "c": -1}, "TensorNormCfg.c must be"),
    ({"kind": "grokfast", "alpha": 1.0}, "GrokFastCfg.alpha must be"),
    ({"kind": "optim"}, "RunCfg.grad_transform must be a GrokFastCfg, a NeuralGrokCfg, a "
                        "TensorNormCfg or None .*got kind 'optim'"),
    (OptimCfg(), "RunCfg.grad_transform must be a GrokFastCfg, a NeuralGrokCfg"),
    ("neuralgrok", "RunCfg.grad_transform must be"),
])
def test_bad_gradient_transforms_name_the_field(transform, message):
    with pytest.raises(ValueError, match=message):
        RunCfg(grad_transform=transform)


def test_the_settings_classes_of_neuralgrok_load_without_importing_it_first():
    import os
    import subprocess
    import sys
    from pathlib import Path

    import grokbook
    source = str(Path(grokbook.__file__).parents[1])  # this checkout's package, not another
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [source, *filter(None, [os.environ.get("PYTHONPATH")])])}
    code = ("from grokbook.config import RunCfg, from_dict\n"
            "run = from_dict({'kind': 'run', 'grad_transform': {'kind': 'neuralgrok', 'c': 0.5}})\n"
            "assert type(run.grad_transform).__name__ == 'NeuralGrokCfg', run\n"
            "assert from_dict({'kind': 'tensornorm'}).c == 0.2\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
