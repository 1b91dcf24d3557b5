import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grokbook.tasks import OPERATIONS, is_prime, modular_arithmetic


def test_is_prime():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_every_answer_matches_python_arithmetic(op):
    p = 13
    data = modular_arithmetic(op, p, 0.5, seed=1)
    expected = {
        "add": lambda a, b: (a + b) % p,
        "sub": lambda a, b: (a - b) % p,
        "mul": lambda a, b: (a * b) % p,
        "div": lambda a, b: (a * pow(b, -1, p)) % p,
        "sum_sq": lambda a, b: (a * a + b * b) % p,
        "quad": lambda a, b: (a * a + a * b + b * b) % p,
        "sq_sub": lambda a, b: (a * a - b) % p,
        "cube_add": lambda a, b: (a**3 + a * b) % p,
    }[op]
    for x, y in [(data.x_train, data.y_train), (data.x_test, data.y_test)]:
        for (a, b), answer in zip(x.tolist(), y.tolist()):
            assert answer == expected(a, b)


def test_split_is_a_partition_of_the_table_of_the_requested_size():
    data = modular_arithmetic("add", 11, 0.3, seed=0)
    pairs = [tuple(r) for r in torch.cat([data.x_train, data.x_test]).tolist()]
    assert len(pairs) == len(set(pairs)) == 11 * 11
    assert len(data.y_train) == round(0.3 * 121)
    assert data.vocab_size == data.n_classes == 11


def test_division_leaves_out_zero_divisors():
    data = modular_arithmetic("div", 7, 0.5)
    assert len(data.y_train) + len(data.y_test) == 7 * 6
    assert (torch.cat([data.x_train, data.x_test])[:, 1] != 0).all()


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (modular_arithmetic("add", 17, 0.4, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"op": "pow"}, "unknown op 'pow'; known operations: add, sub, mul, div"),
    ({"p": 1}, "p must be an integer >= 2"),
    ({"p": 7.0}, "p must be an integer >= 2"),
    ({"op": "mul", "p": 12}, "p must be prime for op 'mul'"),
    ({"op": "div", "p": 9}, "p must be prime for op 'div'"),
    ({"frac": 0.0}, "frac must be a number strictly between 0 and 1"),
    ({"frac": 1.0}, "frac must be a number strictly between 0 and 1"),
    ({"frac": -0.2}, "frac must be a number strictly between 0 and 1"),
    ({"p": 2, "frac": 0.1}, "leaves an empty train or test set"),
    ({"frac": "0.5"}, "frac must be a number strictly between 0 and 1, got '0.5'"),
    ({"frac": float("nan")}, "frac must be a number strictly between 0 and 1"),
    ({"seed": -1}, "seed must be an integer in 0"),
    ({"seed": 2**64}, "seed must be an integer in 0"),
    ({"seed": 0.5}, "seed must be an integer in 0"),
    ({"p": 50000}, "2,500,000,000 pairs. needs about 93.1 GiB of memory"),
])
def test_bad_input_names_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        modular_arithmetic(**{"op": "add", "p": 11, "frac": 0.5, **kwargs})


def test_non_prime_modulus_is_fine_where_no_inverse_is_needed():
    assert len(modular_arithmetic("add", 12, 0.5).y_train) == 72


def test_the_discrete_log_order_turns_multiplication_into_addition():
    from grokbook.tasks import discrete_log_order, primitive_root

    assert primitive_root(7) == 3 and primitive_root(97) == 5 and primitive_root(113) == 3
    p = 13
    order = discrete_log_order(p)
    assert sorted(order) == list(range(1, p))  # every nonzero number once
    for i in range(p - 1):
        for j in range(p - 1):
            assert order[i] * order[j] % p == order[(i + j) % (p - 1)]


def test_primitive_root_needs_a_prime():
    from grokbook.tasks import primitive_root

    with pytest.raises(ValueError, match="p must be a prime"):
        primitive_root(15)
    with pytest.raises(ValueError, match="p"):
        primitive_root(2)



@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 40), frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**63 - 1))
def test_any_addition_table_splits_into_a_partition_with_correct_labels(p, frac, seed):
    from grokbook.tasks import modular_arithmetic

    try:
        data = modular_arithmetic("add", p, frac, seed=seed)
    except ValueError as error:  # a split that leaves one side empty is refused, clearly
        assert "leaves an empty train or test set" in str(error)
        return
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    assert len(x) == p * p and len(set(map(tuple, x.tolist()))) == p * p
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % p)
    again = modular_arithmetic("add", p, frac, seed=seed)
    assert torch.equal(again.x_train, data.x_train)


def test_digits_are_disjoint_pictures_drawn_from_the_seed():
    from grokbook.tasks import DIGIT_CLASSES, DIGIT_PIXELS, digits

    data = digits(n_train=100, n_test=50, seed=3)
    assert data.x_train.shape == (100, DIGIT_PIXELS) and data.x_test.shape == (50, DIGIT_PIXELS)
    assert data.x_train.dtype == torch.float32
    assert 0 <= data.x_train.min() <= data.x_train.max() <= 1
    assert set(data.y_train.tolist()) <= set(range(DIGIT_CLASSES))
    train_rows = {tuple(row) for row in data.x_train.tolist()}
    assert not train_rows & {tuple(row) for row in data.x_test.tolist()}
    again = digits(n_train=100, n_test=50, seed=3)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)
    assert not torch.equal(digits(n_train=100, n_test=50, seed=4).y_train, data.y_train)
    with pytest.raises(ValueError, match="n_train \\+ n_test must be at most 1797"):
        digits(n_train=1000, n_test=1000)
