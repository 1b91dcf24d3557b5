import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grokbook.config import (
    RULES,
    BudgetCfg,
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
    (lambda: RunCfg(model=VectorFNNCfg()), "VectorFNNCfg for ParityCfg data"),
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
