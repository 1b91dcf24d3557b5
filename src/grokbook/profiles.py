"""Named sizes of every chapter's experiments: ``ci``, ``book`` and ``paper``.

One notebook, three sizes. ``ci`` is tiny (the tests re-run each chapter with it in seconds),
``book`` is what the rendered book shows and runs in minutes on a 2-core laptop CPU, ``paper`` is
the papers' own settings, written for a GPU (it still starts on a CPU, slowly). A chapter's claims
must hold at every profile; only the resolution of its pictures changes.

A chapter reads its settings with ``profiles.load("grokking", profile)``; the profile defaults to
the environment variable ``GROKBOOK_PROFILE``, else ``"book"``.
"""

from __future__ import annotations

import copy
import os
from typing import Any

PROFILE_NAMES = ("ci", "book", "paper")


class Profile(dict):
    """A chapter's settings at one size: a dict that also reads as attributes (``P.p``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"profile {self.get('name')!r} has no setting {name!r}; "
                                 f"settings: {', '.join(self)}") from None


# Chapter 1, "Grokking". Ours for ci and book: p and widths small enough for a CPU, lr and weight
# decay raised so the plateau ends within a few thousand epochs (the delay scales roughly like
# 1 / (lr * wd), Liu et al. 2022). paper: Nanda et al.'s 1-layer Transformer on a+b mod 113 with
# 30% train, and the GrokTransfer paper's 3-layer FNN target.
_GROKKING = {
    "ci": {
        "p": 31, "frac": 0.6, "seeds": [0, 1],
        "fnn": {"d_embed": 16, "width": 64, "depth": 2, "init_scale": 1.0},
        "fnn_train": {"lr": 1e-2, "weight_decay": 1.0, "epochs": 1200, "eval_every": 10},
        "transformer": {"d_model": 32, "n_heads": 4, "d_mlp": 128, "n_layers": 1,
                        "init_scale": 0.5},
        "transformer_train": {"lr": 1e-2, "weight_decay": 1.0, "epochs": 1500,
                              "eval_every": 10, "warmup_steps": 10},
        "wd_grid": [0.0, 1.0], "frac_grid": [0.6, 0.8], "grid_epochs": 1500,
        "init_scales": [0.5, 2.0, 8.0, 16.0], "init_epochs": 3000,
    },
    "book": {
        "p": 59, "frac": 0.5, "seeds": [0, 1, 2],
        "fnn": {"d_embed": 32, "width": 128, "depth": 2, "init_scale": 1.0},
        "fnn_train": {"lr": 1e-2, "weight_decay": 1.0, "epochs": 2000, "eval_every": 10},
        "transformer": {"d_model": 64, "n_heads": 4, "d_mlp": 256, "n_layers": 1,
                        "init_scale": 0.5},
        "transformer_train": {"lr": 1e-2, "weight_decay": 1.0, "epochs": 2000,
                              "eval_every": 10, "warmup_steps": 10},
        "wd_grid": [0.0, 0.3, 1.0, 3.0], "frac_grid": [0.3, 0.5, 0.7], "grid_epochs": 3000,
        "init_scales": [0.5, 2.0, 8.0, 16.0], "init_epochs": 3000,
    },
    "paper": {
        "p": 113, "frac": 0.3, "seeds": [0, 1, 2, 3, 4],
        "fnn": {"d_embed": 128, "width": 512, "depth": 3, "init_scale": 1.0},
        "fnn_train": {"lr": 1e-3, "weight_decay": 1.0, "epochs": 30000, "eval_every": 50},
        "transformer": {"d_model": 128, "n_heads": 4, "d_mlp": 512, "n_layers": 1,
                        "init_scale": 1.0},
        "transformer_train": {"lr": 1e-3, "weight_decay": 1.0, "epochs": 30000,
                              "eval_every": 50, "warmup_steps": 10},
        "wd_grid": [0.0, 0.1, 0.3, 1.0, 3.0], "frac_grid": [0.2, 0.3, 0.5, 0.7],
        "grid_epochs": 30000,
        "init_scales": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0], "init_epochs": 30000,
    },
}

# Chapter 2, "The embedding decides": Sec. 2.1 of the GrokTransfer paper. A 3-layer bias-free FNN
# reads a FIXED unit-norm embedding of each operand. ``hyper`` is (init scale, lr, weight decay)
# per embedding. paper: the paper's width 512 and its tuned triples. book: the paper's task
# (a+b mod 113, 25% train) at width 128; the paper's triples except Fourier, which at lr 0.1
# trains at the edge of stability (its kernel jumps every few hundred epochs), so we use lr 0.01,
# the learning rate of one-hot, text and binary, and weight decay 1. ci: p = 71 with 35% train,
# the smallest table on which one-hot still shows a clear plateau. ``seeds`` train one-hot and
# Fourier (the claims compare them), ``other_seeds`` binary and text. Every run stops once its test
# accuracy has held 95% for ``stop_patience`` evaluations (binary levels off below 99%), except
# Fourier's, which train ``fourier_epochs`` so that its kernel can be watched after it generalized.
_TRIPLES = {"one_hot": (0.2, 1e-2, 5.0), "binary": (0.3, 1e-2, 1.0),
            "fourier": (0.5, 1e-2, 1.0), "text": (1.3, 1e-2, 1.0)}
_PAPER_TRIPLES = {**_TRIPLES, "fourier": (0.5, 0.1, 0.1)}


def _hyper(triples: dict[str, tuple[float, float, float]]) -> dict[str, dict[str, float]]:
    return {name: {"init_scale": init, "lr": lr, "weight_decay": wd}
            for name, (init, lr, wd) in triples.items()}


_EMBEDDINGS = {
    "ci": {
        "p": 71, "frac": 0.35, "seeds": [0, 1], "other_seeds": [0],
        "fnn": {"width": 128, "depth": 3}, "hyper": _hyper(_TRIPLES),
        "epochs": 1200, "text_epochs": 500, "fourier_epochs": 600,
        "eval_every": 10, "stop_acc": 0.95, "stop_patience": 20, "probe_size": 48,
    },
    "book": {
        "p": 113, "frac": 0.25, "seeds": [0, 1, 2], "other_seeds": [0, 1],
        "fnn": {"width": 128, "depth": 3}, "hyper": _hyper(_TRIPLES),
        "epochs": 3000, "text_epochs": 1500, "fourier_epochs": 1000,
        "eval_every": 10, "stop_acc": 0.95, "stop_patience": 20, "probe_size": 64,
    },
    "paper": {
        "p": 113, "frac": 0.25, "seeds": [0, 1, 2], "other_seeds": [0, 1, 2],
        "fnn": {"width": 512, "depth": 3}, "hyper": _hyper(_PAPER_TRIPLES),
        "epochs": 10000, "text_epochs": 10000, "fourier_epochs": 5000,
        "eval_every": 20, "stop_acc": 0.95, "stop_patience": 20, "probe_size": 128,
    },
}

# Chapter 3, "A theory you can run": XOR cluster data (GrokTransfer Sec. 3). paper: Fig. 4a's
# p = 80,000, n = 400, eps = 0.05, width 2048. book and ci: smaller p with eps raised so that the
# noise part of an input keeps about the paper's norm (eps * sqrt(p) = 14 in the paper, 14 at book,
# 11 at ci): the noise is what the wide network first fits. Networks: SGD with (coupled) weight
# decay, logistic loss. ``wide``/``weak`` are (w_init, a_init) standard deviations. The lemma
# and r_W experiments use small p: neither result depends on p. ``step_sizes`` are the one-step
# sweep; ``step`` is the one used for Theorem 3.2's check (see the chapter for why not 2.0).
_XOR = {
    "ci": {
        "p": 3000, "n": 400, "eps": 0.2, "n_test": 2000,
        "wide": {"width": 64, "w_init": 0.01, "a_init": 0.5}, "wide_epochs": 300,
        "lr": 0.1, "weight_decay": 0.1, "eval_every": 5,
        "weak": {"w_init": 0.01, "a_init": 0.01}, "weak_epochs": 1000, "weak_seeds": [0, 1, 2, 3],
        "lemma": {"p": 100, "n": 400, "eps": 0.1, "seeds": 8, "epochs": 500},
        "rw": {"p": [200, 1000], "eps": [0.05, 0.1, 0.2], "n": [100, 400, 1600],
               "epochs": 1000},
        "m": 1024, "v_init": 0.4, "step": 20.0, "step_sizes": [2.0, 20.0, 200.0],
    },
    "book": {
        "p": 10000, "n": 400, "eps": 0.14, "n_test": 4000,
        "wide": {"width": 128, "w_init": 0.01, "a_init": 0.5}, "wide_epochs": 400,
        "lr": 0.1, "weight_decay": 0.1, "eval_every": 5,
        "weak": {"w_init": 0.01, "a_init": 0.01}, "weak_epochs": 1000,
        "weak_seeds": [0, 1, 2, 3, 4, 5],
        "lemma": {"p": 100, "n": 400, "eps": 0.1, "seeds": 24, "epochs": 500},
        "rw": {"p": [200, 1000], "eps": [0.05, 0.1, 0.2], "n": [100, 400, 1600],
               "epochs": 1000},
        "m": 2048, "v_init": 0.4, "step": 20.0, "step_sizes": [2.0, 5.0, 20.0, 50.0, 200.0],
    },
    "paper": {
        "p": 80000, "n": 400, "eps": 0.05, "n_test": 4000,
        "wide": {"width": 2048, "w_init": 0.01, "a_init": 0.5}, "wide_epochs": 300,
        "lr": 0.1, "weight_decay": 0.1, "eval_every": 5,
        "weak": {"w_init": 0.01, "a_init": 0.01}, "weak_epochs": 3000,
        "weak_seeds": list(range(10)),
        "lemma": {"p": 1000, "n": 400, "eps": 0.05, "seeds": 100, "epochs": 2000},
        "rw": {"p": [1000, 10000], "eps": [0.025, 0.05, 0.1, 0.2], "n": [100, 200, 400, 800],
               "epochs": 3000},
        "m": 4096, "v_init": 0.4, "step": 20.0, "step_sizes": [2.0, 5.0, 20.0, 50.0, 200.0],
    },
}

# Chapter 4, "Let a weak model grok for you": GrokTransfer for FNNs (paper Sec. 4, Figs. 6, 7).
# ``weak`` is the weak FNN per task (2 layers), stopped when its test accuracy first reaches
# ``weak_stop_acc``; ``target`` the 3-layer FNN trained from A @ B (``transfer_init``,
# ``transfer_train``) and from scratch (``scratch_init``, ``scratch_train``: the same network at
# its own best weight decay). book: a+b and a*b mod 97 with 30% train, where scratch's plateau
# lasts about 2,000 epochs; the weak model has d_embed 6 (the paper's 4 mostly learns a single
# Fourier frequency at our size, see the chapter) and, for a*b, width 32 (width 16 stays below
# 50% test on half the seeds; ci: d_embed 8, width 16, which transfer best at p = 59).
# ``random_seeds``, ``random_epochs``: the no-transfer control; ``ablations``: merging A @ B
# after ``merge_at`` epochs and a weak embedding as wide as the target's (Fig. 15b, c).
# ``sweep``: weak embeddings of other sizes and stopping points, targets trained
# ``sweep["epochs"]``. paper: the paper's p = 113 with 25% train, weak d_embed 4 / width 16 and
# target 128 / 512, its Fig. 1b triples: GrokTransfer (0.3, 5e-3, 3), scratch (1, 5e-2, 3).
# ``parity``: (40, 3)-sparse parity
# (Fig. 6c) with the paper's weak model (3 layers, width 16, stopped at 70% test) and its (lr, wd):
# GrokTransfer (1e-3, 1e-3), scratch (1e-2, 1); the target's width is 128 at book (paper: 512).
_WEAK = {"depth": 2, "init_scale": 1.0}
_PARITY = {"n_bits": 40, "k": 3, "n_train": 1000, "n_test": 2000,
           "weak": {"d_embed": 16, "width": 16, "depth": 3}, "weak_stop_acc": 0.7}
_TRANSFER_BOOK = {
    "p": 97, "frac": 0.3, "tasks": ["add", "mul"], "seeds": [0, 1, 2],
    "weak": {"add": {"d_embed": 6, "width": 16, **_WEAK},
             "mul": {"d_embed": 6, "width": 32, **_WEAK}},
    "weak_train": {"epochs": 4000, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 10},
    "weak_stop_acc": 0.5,
    "target": {"d_embed": 32, "width": 128, "depth": 3},
    "transfer_init": 1.0, "scratch_init": 1.0,
    "transfer_train": {"epochs": 3000, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 10},
    "scratch_train": {"epochs": 4000, "lr": 1e-2, "weight_decay": 1.0, "eval_every": 10},
    "stop_acc": 0.97, "stop_patience": 3, "random_seeds": [0], "random_epochs": 2000,
    "sweep": {"seeds": [0, 1], "d_embed": [2, 4], "stops": [0.2, 0.35], "epochs": 1000},
    "ablations": {"seeds": [0, 1], "merge_at": 100, "epochs": 1500},
    "parity": {**_PARITY, "seeds": [0, 1, 2],
               "weak_train": {"epochs": 3000, "lr": 1e-2, "weight_decay": 1e-3,
                              "eval_every": 10},
               "target": {"d_embed": 128, "width": 128, "depth": 3},
               "transfer_train": {"epochs": 2000, "lr": 1e-3, "weight_decay": 1e-3,
                                  "eval_every": 10},
               "scratch_train": {"epochs": 4000, "lr": 1e-2, "weight_decay": 1.0,
                                 "eval_every": 10}},
}


def _epochs(settings: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Training settings with another epoch budget."""
    return {**settings, "epochs": epochs}


_B, _BP = _TRANSFER_BOOK, _TRANSFER_BOOK["parity"]
_TRANSFER = {
    # ci: the book's settings on a smaller table (p 59, half for training), a narrower target,
    # a weak a*b model with d_W 8 and width 16, and shorter budgets.
    "ci": {**_B, "p": 59, "frac": 0.5,
           "weak": {**_B["weak"], "mul": {"d_embed": 8, "width": 16, **_WEAK}},
           "target": {**_B["target"], "width": 64},
           "transfer_train": _epochs(_B["transfer_train"], 1500),
           "scratch_train": _epochs(_B["scratch_train"], 2500),
           "random_epochs": 1500,
           "sweep": {**_B["sweep"], "seeds": [0, 1, 2], "epochs": 800},
           "ablations": {**_B["ablations"], "merge_at": 50, "epochs": 800},
           "parity": {**_BP, "seeds": [0, 1], "target": {"d_embed": 64, "width": 64, "depth": 3},
                      "transfer_train": _epochs(_BP["transfer_train"], 1000),
                      "scratch_train": _epochs(_BP["scratch_train"], 1500)}},
    "book": _TRANSFER_BOOK,
    "paper": {
        "p": 113, "frac": 0.25, "tasks": ["add", "mul"], "seeds": [0, 1, 2],
        "weak": {"add": {"d_embed": 4, "width": 16, **_WEAK},
                 "mul": {"d_embed": 4, "width": 16, **_WEAK}},
        "weak_train": {"epochs": 10000, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 20},
        "weak_stop_acc": 0.5,
        "target": {"d_embed": 128, "width": 512, "depth": 3},
        "transfer_init": 0.3, "scratch_init": 1.0,
        "transfer_train": {"epochs": 10000, "lr": 5e-3, "weight_decay": 3.0, "eval_every": 20},
        "scratch_train": {"epochs": 10000, "lr": 5e-2, "weight_decay": 3.0, "eval_every": 20},
        "stop_acc": 0.97, "stop_patience": 3, "random_seeds": [0, 1], "random_epochs": 10000,
        "sweep": {"seeds": [0, 1, 2], "d_embed": [2, 8], "stops": [0.1, 0.2, 0.3, 0.4],
                  "epochs": 5000},
        "ablations": {"seeds": [0, 1, 2], "merge_at": 100, "epochs": 10000},
        "parity": {**_PARITY, "seeds": [0, 1, 2],
                   "weak_train": {"epochs": 10000, "lr": 1e-2, "weight_decay": 1e-3,
                                  "eval_every": 20},
                   "target": {"d_embed": 128, "width": 512, "depth": 3},
                   "transfer_train": {"epochs": 10000, "lr": 1e-3, "weight_decay": 1e-3,
                                      "eval_every": 20},
                   "scratch_train": {"epochs": 10000, "lr": 1e-2, "weight_decay": 1.0,
                                     "eval_every": 20}},
    },
}

# Chapter 5, "From a small FNN to a Transformer". ci and book: chapter 1's Transformer (one layer,
# d_model 64; the paper's Fig. 8b has two layers of 128) on a+b mod 59 with 50% train, a
# weak FNN stopped when it first reaches ``weak_stop_acc`` test (the paper: 30%). GrokTransfer
# trains with (lr, wd) = (1e-2, 0.1); scratch and GrokFast with the paper's GrokFast setting
# (1e-2, 1) (Fig. 8b), GrokFast's filters at their authors' defaults. ``low_wd``: the same
# three runs of plain training and GrokFast at weight decay 0.1, where plain training is slow.
# ci: the book's seeds 1 and 2 and shorter budgets (a smaller Transformer, d_model 32, did not
# take the transfer on two of three seeds). paper: the 8-layer Transformer of Fig. 8a (d_model
# 512, d_mlp 512, 4 heads of 128) on a+b mod 113 with 30% train, its triples GrokTransfer
# (0.7, 1e-3, 1), scratch (0.4, 5e-4, 1).
_GROKFAST = {"ema": {"alpha": 0.98, "lamb": 2.0}, "ma": {"window": 100, "lamb": 5.0}}
_CROSS_BOOK = {
    "p": 59, "frac": 0.5, "seeds": [0, 1, 2], "grokfast": _GROKFAST,
    "weak": {"d_embed": 6, "width": 16, **_WEAK},
    "weak_train": {"epochs": 4000, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 10},
    "weak_stop_acc": 0.3,
    "transformer": {"d_model": 64, "n_heads": 4, "d_mlp": 256, "n_layers": 1},
    "transfer_init": 0.5, "scratch_init": 0.5,
    "transfer_train": {"epochs": 1000, "lr": 1e-2, "weight_decay": 0.1, "warmup_steps": 10,
                       "eval_every": 10},
    "scratch_train": {"epochs": 2000, "lr": 1e-2, "weight_decay": 1.0, "warmup_steps": 10,
                      "eval_every": 10},
    "low_wd": {"seeds": [0, 1], "weight_decay": 0.1, "epochs": 2000},
    "stop_acc": 0.97, "stop_patience": 3,
}
_CROSS = {
    "ci": {**_CROSS_BOOK, "seeds": [1, 2],
           "scratch_train": _epochs(_CROSS_BOOK["scratch_train"], 1200),
           "low_wd": {"seeds": [0], "weight_decay": 0.1, "epochs": 1500}},
    "book": _CROSS_BOOK,
    "paper": {
        "p": 113, "frac": 0.3, "seeds": [0, 1, 2], "grokfast": _GROKFAST,
        "weak": {"d_embed": 4, "width": 16, **_WEAK},
        "weak_train": {"epochs": 10000, "lr": 1e-2, "weight_decay": 0.1, "eval_every": 20},
        "weak_stop_acc": 0.3,
        "transformer": {"d_model": 512, "n_heads": 4, "d_mlp": 512, "n_layers": 8},
        "transfer_init": 0.7, "scratch_init": 0.4,
        "transfer_train": {"epochs": 10000, "lr": 1e-3, "weight_decay": 1.0,
                           "warmup_steps": 10, "eval_every": 20},
        "scratch_train": {"epochs": 10000, "lr": 5e-4, "weight_decay": 1.0,
                          "warmup_steps": 10, "eval_every": 20},
        "low_wd": {"seeds": [0, 1], "weight_decay": 0.1, "epochs": 10000},
        "stop_acc": 0.97, "stop_patience": 3,
    },
}

CHAPTERS: dict[str, dict[str, dict[str, Any]]] = {"grokking": _GROKKING,
                                                  "embeddings": _EMBEDDINGS, "xor": _XOR,
                                                  "transfer": _TRANSFER, "cross": _CROSS}


def resolve(profile: str | None = None) -> str:
    """The profile to use: ``profile`` if given, else ``$GROKBOOK_PROFILE``, else ``"book"``."""
    name = profile if profile is not None else os.environ.get("GROKBOOK_PROFILE", "book")
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILE_NAMES)}")
    return name


def load(chapter: str, profile: str | None = None) -> Profile:
    """The settings of ``chapter``'s experiments at ``profile`` (see :func:`resolve`)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters with profiles: "
                         f"{', '.join(CHAPTERS)}")
    name = resolve(profile)
    return Profile(copy.deepcopy(CHAPTERS[chapter][name]), name=name)

