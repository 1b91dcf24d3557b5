"""Chapter 3, "A theory you can run": XOR cluster data (GrokTransfer Sec. 3).

paper: Fig. 4a's p = 80,000, n = 400, eps = 0.05, width 2048. book and ci: smaller p with eps
raised so that the noise part of an input keeps about the paper's norm (eps * sqrt(p) = 14 in
the paper, 14 at book, 11 at ci): the noise is what the wide network first fits. Networks: SGD
with (coupled) weight decay, logistic loss. ``wide`` and ``weak`` are the (w_init, a_init)
standard deviations of the two networks. The lemma and r_W experiments use small p: neither
result depends on p. ``step_sizes`` are the one-step sweep; the chapter picks Theorem 3.2's
step among them by the median accuracy on a validation sample (``n_val`` fresh points, data seed
``data_seeds[2]``), never on the test set; ``step`` is only the explorer widget's default.

The paper's initialisations N(0, 0.01) and N(0, 1e-4) of the weak model are *variances*: their
standard deviations are ``weak = {"w_init": 0.1, "a_init": 0.01}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grokbook.config import replace


@dataclass(frozen=True)
class Xor:
    name: str
    p: int
    n: int
    eps: float
    n_test: int
    wide: dict = field(default_factory=dict)
    wide_epochs: int = 400
    lr: float = 0.1
    weight_decay: float = 0.1
    eval_every: int = 5
    weak: dict = field(default_factory=dict)
    weak_epochs: int = 1000
    weak_seeds: tuple[int, ...] = (0,)
    data_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the data sets: the main problem (and the r_W grid's), the lemma's problem, the
    validation sample that picks the one-step size."""
    n_val: int = 400
    lemma: dict = field(default_factory=dict)
    rw: dict = field(default_factory=dict)
    m: int = 2048
    v_init: float = 0.4
    step: float = 10.0
    step_sizes: tuple[float, ...] = (10.0,)


_RW = {"p": [200, 1000], "eps": [0.05, 0.1, 0.2], "n": [100, 400, 1600], "epochs": 1000}
BOOK = Xor(
    name="book", p=10000, n=400, eps=0.14, n_test=4000,
    wide={"width": 128, "w_init": 0.01, "a_init": 0.5}, wide_epochs=400,
    lr=0.1, weight_decay=0.1, eval_every=5,
    weak={"w_init": 0.1, "a_init": 0.01}, weak_epochs=1000, weak_seeds=tuple(range(10)),
    lemma={"p": 100, "n": 400, "eps": 0.1, "seeds": tuple(range(24)), "epochs": 500},
    rw=_RW,
    m=2048, v_init=0.4, step=10.0, step_sizes=(2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0),
)
CI = replace(BOOK, name="ci", p=3000, eps=0.2, n_test=2000,
             wide={**BOOK.wide, "width": 64}, wide_epochs=300,
             lemma={**BOOK.lemma, "seeds": tuple(range(8))}, m=1024)
PAPER = replace(BOOK, name="paper", p=80000, eps=0.05,
                wide={**BOOK.wide, "width": 2048}, wide_epochs=300, weak_epochs=3000,
                weak_seeds=tuple(range(10)),
                lemma={"p": 1000, "n": 400, "eps": 0.05, "seeds": tuple(range(100)),
                       "epochs": 2000},
                rw={"p": [1000, 10000], "eps": [0.025, 0.05, 0.1, 0.2], "n": [100, 200, 400, 800],
                    "epochs": 3000}, m=4096)
PROFILES = {"ci": CI, "book": BOOK, "paper": PAPER}
