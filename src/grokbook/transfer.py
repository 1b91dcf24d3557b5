"""GrokTransfer (Xu et al., 2025): let a weak model grok for you.

Train a small, cheap model until it generalizes a little; take its input embedding ``A``
(``vocab x d_W``); give the large target model the embedding ``E_T = A @ B`` with ``B``
(``d_W x d_T``) random, and train ``A``, ``B`` and the rest of the target together. The paper
leaves several choices open; ours, stated once here and in chapter 4:

- ``B`` is initialised like a bias-free ``nn.Linear(d_W, d_T)`` (PyTorch's default, uniform in
  +-1/sqrt(d_W)) times the target's init scale; ``A`` is taken as the weak model left it.
- The two operand embeddings are concatenated, as in every FNN of the book.
- The weak model stops after a fixed number of epochs, or when its test accuracy first reaches a
  threshold (``train(..., stop_acc=threshold, stop_patience=1)``).

Targets: the book's FNN (:func:`fnn_target`), its Transformer (:func:`transformer_target`, ``A``
from a weak FNN) and the FNN on vector inputs (:func:`vector_target`, ``A`` = the weak model's
first layer).

Ablations: ``freeze_a`` keeps ``A`` fixed; :func:`random_like` replaces ``A`` by a random
matrix of the same shape and size (a low-rank embedding with no transfer); :func:`merge` turns
``A @ B`` into one full-rank matrix mid-training; a weak model with a wide embedding gives an
``A`` as wide as the target's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grokbook.checks import check_int, check_seed
from grokbook.config import validate
from grokbook.models import FNN, VectorFNN, make_model


class LowRankEmbedding(nn.Module):
    """Token embedding ``E = A @ B``: ``A`` from a weak model, ``B`` random (see module doc)."""

    def __init__(self, a: torch.Tensor, d_target: int, init_scale: float = 1.0,
                 freeze_a: bool = False, seed: int = 0):
        super().__init__()
        if a.dim() != 2:
            raise ValueError(f"the weak embedding A must be 2-D (vocabulary x d_W), got shape "
                             f"{tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise ValueError("the weak embedding A holds NaN or infinite entries: the weak model "
                             "diverged (see its History's stopped) and has nothing to transfer")
        check_int("d_target", d_target)
        init_scale = validate("init_scale", init_scale)
        check_seed(seed)
        a = a.detach().float().clone()
        if freeze_a:
            self.register_buffer("a", a)
        else:
            self.a = nn.Parameter(a)
        bound = 1 / math.sqrt(a.shape[1])
        generator = torch.Generator().manual_seed(seed)
        b = (torch.rand(a.shape[1], d_target, generator=generator) * 2 - 1) * bound
        self.b = nn.Parameter(b * init_scale)

    @property
    def num_embeddings(self) -> int:
        return self.a.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.b.shape[1]

    def weight(self) -> torch.Tensor:
        """The full embedding matrix ``A @ B`` (``vocab x d_T``)."""
        return self.a @ self.b

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.is_floating_point():  # vector inputs: x @ A @ B (a token is a one-hot x)
            return tokens @ self.a @ self.b
        # F.embedding, not self.a[tokens]: its backward is deterministic on CPU, advanced
        # indexing's scatter-add is not.
        return nn.functional.embedding(tokens, self.a) @ self.b


def merge(model: nn.Module) -> nn.Module:
    """Replace a target's ``A @ B`` embedding by one trainable matrix holding the product (the
    paper's Fig. 15b ablation): the network computes the same function, but from now on its
    embedding is an ordinary full-rank ``nn.Embedding``. Works in place and returns ``model``.
    Training it further starts a new optimizer (AdamW's moments of A and B do not carry over).
    """
    embed = getattr(model, "embed", None)
    if not isinstance(embed, LowRankEmbedding):
        raise ValueError(f"{type(model).__name__} has no A @ B embedding to merge (expected "
                         "model.embed to be a LowRankEmbedding, as fnn_target and "
                         "transformer_target make it)")
    model.embed = nn.Embedding.from_pretrained(embed.weight().detach().clone(), freeze=False)
    return model


def weak_embedding(model: nn.Module) -> torch.Tensor:
    """The input embedding ``A`` of a trained weak model (``vocab x d_W``), detached.

    For the book's FNN and Transformer it is the token embedding, ``A @ B`` for a transferred
    one (the Transformer's extra "=" token is dropped); for a network on vector inputs, the
    first layer's weight, transposed (``input dimension x width``).
    """
    embed = getattr(model, "embed", None)
    vocab = getattr(model, "vocab_size", None)  # set by the Transformer, which adds "="
    if isinstance(embed, (nn.Embedding, LowRankEmbedding)):
        weight = embed.weight() if isinstance(embed, LowRankEmbedding) else embed.weight
        return weight.detach()[:vocab].clone()
    if isinstance(embed, nn.Linear):  # VectorFNN: the first layer, as input x d_embed
        return embed.weight.detach().T.clone()
    hidden = getattr(model, "hidden", None)
    if isinstance(hidden, nn.Linear):
        return hidden.weight.detach().T.clone()
    raise ValueError(f"{type(model).__name__} has no embedding to transfer: expected a learned "
                     "token embedding (model.embed, an nn.Embedding) or a first layer "
                     "(model.hidden, an nn.Linear)")


def random_like(a: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A random Gaussian matrix of ``a``'s shape and Frobenius norm: the no-transfer ablation
    (a low-rank embedding of the same size that has learned nothing)."""
    if not torch.isfinite(a).all():
        raise ValueError("a holds NaN or infinite entries: there is no norm to match")
    check_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(a.shape, generator=generator)
    return noise * (a.norm() / noise.norm())


def fnn_target(a: torch.Tensor, n_classes: int, seed: int = 0, freeze_a: bool = False,
               vocab_size: int | None = None, **fnn_options) -> FNN:
    """The book's FNN whose token embedding is ``A @ B``: ``fnn_options`` as for
    :class:`grokbook.models.FNN` (``d_embed`` is the target's ``d_T``; ``init_scale``
    scales ``B`` and the layers, not ``A``). Given ``vocab_size`` (the target task's), a weak
    embedding with another number of rows is an error."""
    options = dict(fnn_options)
    d_target = options.pop("d_embed", 128)
    init_scale = options.get("init_scale", 1.0)
    embedding = LowRankEmbedding(a, d_target, init_scale=init_scale, freeze_a=freeze_a,
                                 seed=seed)
    vocab = a.shape[0] if vocab_size is None else vocab_size
    return make_model("fnn", vocab, n_classes, seed=seed, embedding=embedding, **options)


def transformer_target(a: torch.Tensor, n_classes: int, seed: int = 0, freeze_a: bool = False,
                       vocab_size: int | None = None, **options) -> nn.Module:
    """The book's Transformer whose token embedding is ``A @ B`` (cross-architecture transfer:
    ``A`` from a weak FNN). The "=" token has no row in ``A``: it gets a zero row, trained with
    the rest (its position embedding tells it apart from the start). ``options`` as for
    :class:`grokbook.models.Transformer`; ``init_scale`` scales ``B`` and the Transformer, not
    ``A``."""
    vocab = a.shape[0] if vocab_size is None else vocab_size
    if a.shape[0] != vocab:
        raise ValueError(f"the weak embedding has {a.shape[0]} rows but the target's vocabulary "
                         f"has {vocab} tokens: the weak model must have been trained on the "
                         "same tokens")
    model = make_model("transformer", vocab, n_classes, seed=seed, **options)
    rows = torch.cat([a.detach().float(), a.new_zeros(1, a.shape[1])])
    model.embed = LowRankEmbedding(rows, model.embed.embedding_dim, freeze_a=freeze_a,
                                   init_scale=options.get("init_scale", 1.0), seed=seed)
    return model


def vector_target(a: torch.Tensor, n_outputs: int = 1, seed: int = 0, freeze_a: bool = False,
                  d_in: int | None = None, **options) -> VectorFNN:
    """A :class:`grokbook.models.VectorFNN` whose first layer is ``x @ A @ B``, ``A`` being a
    weak VectorFNN's first layer (``d_in x d_W``). Given ``d_in`` (the target task's input
    size), a weak model trained on inputs of another size is an error."""
    options = dict(options)
    d_target = options.pop("d_embed", 128)
    embedding = LowRankEmbedding(a, d_target, init_scale=options.get("init_scale", 1.0),
                                 freeze_a=freeze_a, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VectorFNN(a.shape[0] if d_in is None else d_in, n_outputs,
                         embedding=embedding, **options)
