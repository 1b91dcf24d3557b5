"""The networks of the book: a bias-free FNN and a decoder-only Transformer (Nanda et al. style).

Both read a batch of operand tokens of shape ``(n, 2)`` and return logits over the ``n_classes``
answers. Both take an ``init_scale`` that multiplies every parameter after PyTorch's default
initialisation, the knob of Omnigrok (Liu et al., 2022) and of the GrokTransfer paper's grids.
Beside them: the FNN on vectors (sparse parity), the two-layer ReLU networks of the XOR theory,
and a small ResNet for chapter 7's polygon pictures.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from grokbook.checks import check_int, check_memory, check_seed
from grokbook.config import validate


def scale_parameters(model: nn.Module, init_scale: float) -> None:
    """Multiply every parameter of ``model`` by ``init_scale`` (a finite number > 0) in place."""
    init_scale = validate("init_scale", init_scale)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(init_scale)


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        check_int(name, value)


def _check_size(parameters: int, what: str) -> None:
    """Refuse, before allocating it, a model whose parameters (with their gradients and
    AdamW's two moments: four float32 copies) would not fit in this machine's memory."""
    check_memory(16 * parameters, f"{what} ({parameters:,} parameters, trained with AdamW)")


def _chain(dims: list[int]) -> int:
    """Weights of bias-free linear layers through ``dims``."""
    return sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def _given_embedding_dim(embedding: nn.Module, size: int, name: str, unit: str) -> int:
    """The dimension of a caller's embedding module, after checking it has ``size`` rows."""
    rows = getattr(embedding, "num_embeddings", None)
    if rows != size:
        raise ValueError(f"embedding has {rows} rows but {name} is {size}: the embedding must "
                         f"have one row per {unit}")
    return embedding.embedding_dim


def _bias_free_layers(dims: list[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(d_in, d_out, bias=False)
                         for d_in, d_out in zip(dims[:-1], dims[1:]))


class FNN(nn.Module):
    """Bias-free fully-connected network on concatenated operand embeddings.

    ``f(a, b) = W_depth relu(... relu(W_1 [E a; E b]))``: ``depth`` weight matrices after the
    embedding ``E`` (``depth=3`` is the GrokTransfer paper's "3-layer FNN"), hidden width
    ``width``, no biases anywhere. ``embedding`` replaces the learned ``nn.Embedding`` with any
    module of ``vocab_size`` rows (a ``grokbook.models.FixedEmbedding``, or GrokTransfer's
    ``grokbook.transfer.LowRankEmbedding``); ``d_embed`` is then its dimension, and
    ``init_scale`` leaves it as its maker initialised it.
    """

    inputs = "tokens"  # what it reads: integer tokens or real vectors (checked by train)

    def __init__(self, vocab_size: int, n_classes: int, d_embed: int = 128, width: int = 512,
                 depth: int = 3, init_scale: float = 1.0, n_operands: int = 2,
                 embedding: nn.Module | None = None):
        super().__init__()
        if embedding is not None:
            d_embed = _given_embedding_dim(embedding, vocab_size, "vocab_size", "token")
        _check_positive(vocab_size=vocab_size, n_classes=n_classes, d_embed=d_embed,
                        width=width, depth=depth, n_operands=n_operands)
        dims = [n_operands * d_embed] + [width] * (depth - 1) + [n_classes]
        _check_size(_chain(dims) + (vocab_size * d_embed if embedding is None else 0), "FNN")
        self.embed = embedding if embedding is not None else nn.Embedding(vocab_size, d_embed)
        self.layers = _bias_free_layers([n_operands * d_embed] + [width] * (depth - 1)
                                        + [n_classes])
        scale_parameters(self.layers, init_scale)
        if embedding is None:  # a given embedding is used as its maker initialised it
            scale_parameters(self.embed, init_scale)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).flatten(1)
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h)


class VectorFNN(nn.Module):
    """The bias-free FNN on vector inputs (sparse parity, images): a linear "embedding"
    ``x @ E`` (``nn.Linear(d_in, d_embed)``, or any module mapping ``d_in`` to ``d_embed``
    features, e.g. GrokTransfer's ``A @ B``), then ``depth`` weight matrices with ReLUs between.
    ``n_outputs=1`` gives one real output for the logistic loss."""

    inputs = "vectors"  # what it reads: integer tokens or real vectors (checked by train)

    def __init__(self, d_in: int, n_outputs: int = 1, d_embed: int = 128, width: int = 512,
                 depth: int = 3, init_scale: float = 1.0, embedding: nn.Module | None = None):
        super().__init__()
        _check_positive(d_in=d_in, n_outputs=n_outputs, d_embed=d_embed, width=width,
                        depth=depth)
        if embedding is not None:
            d_embed = _given_embedding_dim(embedding, d_in, "d_in", "input coordinate")
        _check_size(_chain([d_embed] + [width] * (depth - 1) + [n_outputs])
                    + (d_in * d_embed if embedding is None else 0), "VectorFNN")
        self.embed = embedding if embedding is not None else nn.Linear(d_in, d_embed, bias=False)
        self.layers = _bias_free_layers([d_embed] + [width] * (depth - 1) + [n_outputs])
        scale_parameters(self.layers, init_scale)
        if embedding is None:
            scale_parameters(self.embed, init_scale)
        self.squeeze = n_outputs == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        out = self.layers[-1](h)
        return out.squeeze(-1) if self.squeeze else out


RESNET_GROUPS = 4  # GroupNorm's groups in SmallResNet


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions with GroupNorm and a skip connection (a 1 x 1 convolution where
    the shape changes): the basic block of a ResNet, with GroupNorm instead of BatchNorm so that
    a picture's output does not depend on the rest of the batch (full-batch training and
    evaluation then agree)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(RESNET_GROUPS, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(RESNET_GROUPS, c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(RESNET_GROUPS, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.skip(x))


class SmallResNet(nn.Module):
    """A small ResNet for the polygon pictures (chapter 7), trained from scratch: a 3 x 3 stem
    of ``width`` channels at stride 2 (ResNet-18's stem also halves the picture first; this is
    what makes it cheap on a CPU), three residual blocks of ``width``, ``2 width`` (stride 2) and
    ``4 width`` channels (stride 2), global average pooling and a linear head. Gu et al. use
    an ImageNet-pretrained ResNet-18; no weights can be downloaded here. ``width`` must be a
    multiple of 4 (GroupNorm's groups); ``init_scale`` multiplies every parameter."""

    inputs = "images"  # what it reads: integer tokens, real vectors or images (checked by train)

    def __init__(self, n_classes: int, width: int = 16, init_scale: float = 1.0,
                 in_channels: int = 1):
        super().__init__()
        _check_positive(n_classes=n_classes, width=width, in_channels=in_channels)
        if width % RESNET_GROUPS:
            raise ValueError(f"width must be a multiple of {RESNET_GROUPS} (GroupNorm's groups), "
                             f"got {width}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1, bias=False),
                                  nn.GroupNorm(RESNET_GROUPS, width), nn.ReLU())
        self.blocks = nn.Sequential(ResidualBlock(width, width),
                                    ResidualBlock(width, 2 * width, 2),
                                    ResidualBlock(2 * width, 4 * width, 2))
        self.head = nn.Linear(4 * width, n_classes)
        _check_size(sum(p.numel() for p in self.parameters()), "SmallResNet")
        scale_parameters(self, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SmallResNet reads pictures of shape (n, channels, height, width), "
                             f"got shape {tuple(x.shape)}")
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class Block(nn.Module):
    """One pre-norm Transformer block: causal multi-head attention, then a ReLU MLP.

    Attention is written out (three positions need no fused kernel), which also lets
    ``torch.func.vmap`` batch it across the members of an ensemble.
    """

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, layer_norm: bool):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.ln_attn = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key_value = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.ln_mlp = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))

    @staticmethod
    def _flat(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``layer`` applied to the rows of ``x`` as one 2-D matrix: the same numbers, but
        under ``vmap`` a plain batched matmul instead of one with expanded weights."""
        return layer(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], -1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as batch x positions x heads x d_head: a view, no copy."""
        n, t, d = x.shape
        return x.view(n, t, self.n_heads, d // self.n_heads)

    def _attend(self, h: torch.Tensor, last_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights (batch x queries x keys x heads) and the heads' values (batch x
        keys x heads x d_head). On three positions, products of broadcast tensors summed over
        d_head are 1.3 times faster end to end than batched 3 x 3 matrix products with their
        transposed copies (a Transformer of chapter 5 on one CPU thread, 2026-12-06)."""
        keys, values = self._flat(self.key_value, h).chunk(2, dim=-1)
        h_query = h[:, -1:] if last_only else h
        queries, keys, values = map(self._heads, (self._flat(self.query, h_query), keys, values))
        scores = (queries.unsqueeze(2) * keys.unsqueeze(1)).sum(-1) / math.sqrt(queries.shape[-1])
        if not last_only:  # causal: position i attends to positions <= i
            t = scores.shape[2]
            future = torch.ones(t, t, dtype=torch.bool, device=scores.device).triu(1)
            scores = scores.masked_fill(future[:, :, None], float("-inf"))
        return scores.softmax(dim=2), values

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The block's attention weights on residual stream ``x``: batch x heads x query
        position x key position (rows sum to 1; causal, so a position sees only itself and
        the ones before it)."""
        return self._attend(self.ln_attn(x), last_only=False)[0].permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Run the block; with ``last_only`` compute the output at the final position only.

        The loss reads only the "=" position, so the last block skips the others' queries
        and MLPs: less work, same logits.
        """
        h = self.ln_attn(x)
        residual = x[:, -1:] if last_only else x
        pattern, values = self._attend(h, last_only)
        attended = (pattern.unsqueeze(-1) * values.unsqueeze(1)).sum(2)  # n x q x heads x d
        n, t = attended.shape[:2]
        x = residual + self._flat(self.out, attended.reshape(n, t, -1))
        return x + self._flat(self.mlp, self.ln_mlp(x))

    def last_from_table(self, table: torch.Tensor, rows: torch.Tensor,
                        last: int) -> torch.Tensor:
        """The block's output at the last position, for a first block whose input at every
        position is a function of that position's token alone: ``table`` is the input for every
        (token, position) pair (tokens x positions x d_model); ``rows`` (batch x positions) the
        index of each sequence's pairs in ``table`` seen as a (tokens * positions) x d_model
        matrix; ``last`` the index of the last position's pair, the same in every sequence
        (the "=" token).

        The same numbers as :meth:`forward` with ``last_only`` to float32 rounding, for less
        work: keys, values and the last position's query are computed once per pair (60 x 3
        rows in chapter 5, not 1740 x 3) and looked up, so that per sequence only the attention
        weights, the output projection and the MLP remain (a training step of chapter 5's
        Transformer 1.5-1.6 times as fast on one thread of an AMD EPYC, 2026-12-06). The lookups are
        ``F.embedding``, whose backward is deterministic on a CPU (indexing's is not). The table
        is built at every call, so a batch smaller than the vocabulary gains nothing."""
        d = table.shape[-1]
        h = self.ln_attn(table)
        keys, values = self._flat(self.key_value, h).chunk(2, dim=-1)
        query = self.query(h.reshape(-1, d)[last])
        heads, d_head = self.n_heads, d // self.n_heads
        scores = ((keys.reshape(-1, heads, d_head) * query.view(heads, d_head)).sum(-1)
                  / math.sqrt(d_head))  # one score per pair and head
        pattern = F.embedding(rows, scores).softmax(dim=1)  # batch x positions x heads
        looked_up = F.embedding(rows, values.reshape(-1, d)).view(*rows.shape, heads, d_head)
        attended = (pattern.unsqueeze(-1) * looked_up).sum(1)  # batch x heads x d_head
        x = table.reshape(-1, d)[last] + self.out(attended.reshape(len(rows), d))
        return x + self.mlp(self.ln_mlp(x))


class Transformer(nn.Module):
    """Decoder-only Transformer on the sequence ``a, b, =`` in the style of Nanda et al. (2023).

    Token and learned position embeddings, ``n_layers`` blocks (attention without biases, a
    ReLU MLP of width ``d_mlp``), optional LayerNorm (Nanda et al. use none), and an unembedding
    read at the "=" position only. The "=" token is index ``vocab_size``.
    """

    inputs = "tokens"  # what it reads: integer tokens or real vectors (checked by train)

    def __init__(self, vocab_size: int, n_classes: int, d_model: int = 128, n_heads: int = 4,
                 d_mlp: int = 512, n_layers: int = 1, layer_norm: bool = False,
                 init_scale: float = 1.0, n_operands: int = 2):
        super().__init__()
        _check_positive(vocab_size=vocab_size, n_classes=n_classes, d_model=d_model,
                        n_heads=n_heads, d_mlp=d_mlp, n_layers=n_layers, n_operands=n_operands)
        block = 4 * d_model * d_model + 2 * d_model * d_mlp + d_mlp + 5 * d_model
        _check_size((vocab_size + n_operands + 2 + n_classes) * d_model + n_layers * block,
                    "Transformer")
        self.equals_token = vocab_size
        self.vocab_size = vocab_size  # the "=" token is number vocab_size
        self.embed = nn.Embedding(vocab_size + 1, d_model)
        self.pos_embed = nn.Embedding(n_operands + 1, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_mlp, layer_norm) for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.unembed = nn.Linear(d_model, n_classes, bias=False)
        scale_parameters(self, init_scale)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if len(self.blocks) == 1:  # every position's input is its token's: look keys up
            n_positions = tokens.shape[1] + 1
            pairs = (self.embed(torch.arange(self.vocab_size + 1, device=tokens.device))[:, None]
                     + self.pos_embed.weight[None, :n_positions])
            rows = self._sequence(tokens) * n_positions + torch.arange(
                n_positions, device=tokens.device)
            last = self.equals_token * n_positions + n_positions - 1
            return self.unembed(self.ln_final(self.blocks[0].last_from_table(pairs, rows, last)))
        x = self._embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, last_only=i == len(self.blocks) - 1)
        return self.unembed(self.ln_final(x[:, -1]))

    def _sequence(self, tokens: torch.Tensor) -> torch.Tensor:
        """The sequence ``tokens, =``."""
        return torch.cat([tokens, torch.full_like(tokens[:, :1], self.equals_token)], dim=1)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings of the sequence ``tokens, =``."""
        sequence = self._sequence(tokens)
        return self.embed(sequence) + self.pos_embed.weight[: sequence.shape[1]]

    @torch.no_grad()
    def attention(self, tokens: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """Attention weights of block ``layer`` on the inputs ``tokens`` (batch x operands):
        batch x heads x query position x key position, the last position being "=". Row
        ``[..., -1, :]`` says where the answer's position looks."""
        if not 0 <= layer < len(self.blocks):
            raise ValueError(f"layer must lie in 0..{len(self.blocks) - 1}, got {layer!r}")
        x = self._embed(tokens)
        for block in self.blocks[:layer]:
            x = block(x)
        return self.blocks[layer].attention(x)


MODELS = {"fnn": FNN, "transformer": Transformer}


def make_model(kind: str, vocab_size: int, n_classes: int, seed: int = 0,
               **options) -> nn.Module:
    """Build a model by name (``"fnn"`` or ``"transformer"``), initialised from ``seed``.

    ``options`` go to the model's constructor (``d_embed``, ``width``, ``depth`` for the FNN;
    ``d_model``, ``n_heads``, ``d_mlp``, ``n_layers``, ``layer_norm`` for the Transformer;
    ``init_scale`` for both). The global random state is left as it was.
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; known models: {', '.join(MODELS)}")
    known = [name for name in inspect.signature(MODELS[kind]).parameters
             if name not in ("vocab_size", "n_classes")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for model {kind!r}; known "
                         f"options: {', '.join(known)}")
    check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[kind](vocab_size, n_classes, **options)


class FixedEmbedding(nn.Module):
    """Looks tokens up in a fixed table (a buffer: not trained, not scaled, not decayed)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        if table.dim() != 2:
            raise ValueError(f"table must be 2-D (vocabulary x dimension), "
                             f"got shape {tuple(table.shape)}")
        if not torch.isfinite(table).all():
            raise ValueError("table holds NaN or infinite entries: an embedding must be finite")
        self.register_buffer("table", table.float().clone())

    @property
    def num_embeddings(self) -> int:
        return self.table.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.table.shape[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens]


# ---- the two-layer ReLU networks of the XOR theory (chapter 3) --------------------------------

class TwoLayerReLU(nn.Module):
    """``f(x) = sum_j a_j relu(<w_j, x>)``: bias-free, one real output.

    Hidden weights ``w_j ~ N(0, w_init^2 I)``, output weights ``a_j ~ N(0, a_init^2)``, both
    trained. ``hidden.weight`` (``width x p``) is what GrokTransfer transfers.
    """

    inputs = "vectors"  # what it reads: integer tokens or real vectors (checked by train)

    def __init__(self, p: int, width: int, w_init: float, a_init: float, seed: int = 0):
        super().__init__()
        check_int("p", p, minimum=3)
        check_int("width", width)
        for name, value in {"w_init": w_init, "a_init": a_init}.items():
            validate(name, value, "init_scale")
        check_seed(seed)
        self.hidden = nn.Linear(p, width, bias=False)
        self.output = nn.Linear(width, 1, bias=False)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(width, p, generator=generator) * w_init)
            self.output.weight.copy_(torch.randn(1, width, generator=generator) * a_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x))).squeeze(-1)


class TransferredNet(nn.Module):
    """Theorem 3.2's target: ``f(x) = sum_j a_j relu(<v_j, U^T x>)``.

    ``U`` (``p x k``, the weak model's hidden weights transposed) is fixed, the output weights
    ``a_j`` are fixed at +-1/sqrt(m) (half of each), and only ``V`` (``m x k``, entries uniform
    on ``{+-v_init}``) is trained.
    """

    inputs = "vectors"  # what it reads: integer tokens or real vectors (checked by train)

    def __init__(self, embedding: torch.Tensor, m: int, v_init: float, seed: int = 0):
        super().__init__()
        if embedding.dim() != 2:
            raise ValueError(f"embedding must be a p x k matrix, got shape "
                             f"{tuple(embedding.shape)}")
        check_int("m", m, minimum=2)
        validate("v_init", v_init, "init_scale")
        check_seed(seed)
        k = embedding.shape[1]
        generator = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, (m, k), generator=generator).float() * 2 - 1
        self.register_buffer("embedding", embedding.detach().float().clone())
        self.register_buffer("a", torch.where(torch.arange(m) % 2 == 0, 1.0, -1.0)
                             / math.sqrt(m))
        self.v = nn.Parameter(v_init * signs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.embedding @ self.v.T) @ self.a
