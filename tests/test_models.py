import pytest
import torch

from grokbook.models import FNN, Block, Transformer, make_model


def test_fnn_shapes_depth_and_no_biases():
    model = FNN(vocab_size=11, n_classes=11, d_embed=4, width=16, depth=3)
    assert model(torch.tensor([[1, 2], [3, 4]])).shape == (2, 11)
    assert [tuple(layer.weight.shape) for layer in model.layers] == [(16, 8), (16, 16), (11, 16)]
    assert all(layer.bias is None for layer in model.layers)


@pytest.mark.parametrize("kind", ["fnn", "transformer"])
def test_init_scale_multiplies_every_default_parameter(kind):
    base = make_model(kind, 7, 7, seed=5)
    scaled = make_model(kind, 7, 7, seed=5, init_scale=3.0)
    for a, b in zip(base.parameters(), scaled.parameters()):
        torch.testing.assert_close(3.0 * a, b)


def test_make_model_is_seeded_and_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = make_model("fnn", 7, 7, seed=1)
    after = torch.rand(1)
    b = make_model("fnn", 7, 7, seed=1)
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("layer_norm", [False, True])
def test_transformer_shapes(layer_norm):
    model = Transformer(13, 13, d_model=16, n_heads=2, d_mlp=32, n_layers=2, layer_norm=layer_norm)
    assert model(torch.randint(0, 13, (5, 2))).shape == (5, 13)
    assert model.embed.num_embeddings == 14  # 13 numbers and "="


def test_block_last_only_matches_the_full_computation_at_the_last_position():
    torch.manual_seed(0)
    block = Block(d_model=16, n_heads=4, d_mlp=32, layer_norm=True)
    x = torch.randn(6, 3, 16)
    torch.testing.assert_close(block(x, last_only=True)[:, 0], block(x)[:, -1])



@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("low_rank", [False, True])
def test_a_one_layer_transformer_looks_its_keys_up_with_the_same_numbers(layer_norm, low_rank):
    """A one-block Transformer computes keys, values and the "=" query once per (token,
    position) and looks them up (Block.last_from_table): the logits and every gradient are
    those of the block run on each sequence's rows, to float32 rounding, with the learned
    embedding and with GrokTransfer's A @ B."""
    from grokbook.transfer import LowRankEmbedding

    model = make_model("transformer", 13, 13, seed=2, d_model=16, n_heads=4, d_mlp=32,
                       layer_norm=layer_norm)
    if low_rank:
        model.embed = LowRankEmbedding(torch.randn(14, 3), 16, seed=1)
    tokens = torch.cartesian_prod(torch.arange(13), torch.arange(13))
    labels = (tokens[:, 0] + tokens[:, 1]) % 13

    def by_rows(x):
        h = model.blocks[0](model._embed(x), last_only=True)
        return model.unembed(model.ln_final(h[:, -1]))

    grads = []
    for forward in (model, by_rows):
        model.zero_grad()
        logits = forward(tokens)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        grads.append((logits.detach(), [p.grad.clone() for p in model.parameters()
                                        if p.grad is not None]))
    (table_logits, table_grads), (row_logits, row_grads) = grads
    torch.testing.assert_close(table_logits, row_logits, rtol=1e-5, atol=1e-6)
    assert len(table_grads) == len(row_grads) >= 7
    for a, b in zip(table_grads, row_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("last_only", [False, True])
def test_block_is_multi_head_causal_attention_then_an_mlp(last_only):
    """The block against PyTorch's own attention on the same weights: heads split and joined
    in the same order, causal, scaled by sqrt(d_head); ``attention`` returns its weights."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    block = Block(d_model=12, n_heads=3, d_mlp=16, layer_norm=False)
    x = torch.randn(5, 3, 12, dtype=torch.float64)
    block = block.double()
    q = block.query(x).view(5, 3, 3, 4).transpose(1, 2)
    k, v = (t.view(5, 3, 3, 4).transpose(1, 2) for t in block.key_value(x).chunk(2, dim=-1))
    attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    h = x + block.out(attended.transpose(1, 2).reshape(5, 3, 12))
    expected = h + block.mlp(h)
    got = block(x, last_only=last_only)
    torch.testing.assert_close(got, expected[:, -1:] if last_only else expected)
    weights = (q @ k.transpose(-1, -2) / 2.0).masked_fill(
        torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    torch.testing.assert_close(block.attention(x), weights)


def test_attention_is_causal():
    torch.manual_seed(0)
    block = Block(d_model=8, n_heads=2, d_mlp=16, layer_norm=False)
    x = torch.randn(2, 3, 8)
    changed = x.clone()
    changed[:, 2] += 1.0
    torch.testing.assert_close(block(x)[:, :2], block(changed)[:, :2])


@pytest.mark.parametrize(("build", "message"), [
    (lambda: make_model("mlp", 7, 7), "unknown model 'mlp'; known models: fnn, transformer"),
    (lambda: FNN(7, 7, width=0), "width must be a positive integer"),
    (lambda: FNN(7, 7, depth=0), "depth must be a positive integer"),
    (lambda: FNN(7, 7, init_scale=0), r"init_scale must be a finite number in \(0, inf\)"),
    (lambda: Transformer(7, 7, d_model=10, n_heads=4), r"d_model \(10\) must be divisible"),
    (lambda: FNN(7, 7, init_scale=float("inf")), "init_scale must be a finite number"),
    (lambda: FNN(7, 7, init_scale="1"), "init_scale must be a finite number"),
    (lambda: Transformer(7, 7, init_scale=float("nan")), "init_scale must be a finite number"),
    (lambda: make_model("fnn", 7, 7, widht=8), "unknown option.s. widht for model 'fnn'; "
     "known options: d_embed, width, depth, init_scale"),
    (lambda: make_model("fnn", 7, 7, seed=-1), "seed must be an integer in 0"),
    (lambda: FNN(7, 7, width=10**7, depth=3), r"FNN \(100,002,630,000,896 parameters, trained "
     r"with AdamW\) needs about .* GiB of memory"),
    (lambda: Transformer(7, 7, d_mlp=10**8), r"Transformer \(.* parameters.*\) needs about"),
])
def test_bad_model_settings_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_transformer_attention_is_causal_and_sums_to_one():
    model = make_model("transformer", 11, 11, d_model=16, n_heads=2, d_mlp=32, n_layers=2)
    tokens = torch.tensor([[1, 2], [3, 4], [10, 0]])
    for layer in (0, 1):
        pattern = model.attention(tokens, layer=layer)
        assert pattern.shape == (3, 2, 3, 3)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(3, 2, 3))
        assert torch.all(pattern.triu(1) == 0)  # no position reads a later one
    with pytest.raises(ValueError, match="layer must lie in 0..1"):
        model.attention(tokens, layer=2)
