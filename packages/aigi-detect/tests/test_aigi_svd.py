"""SVD-subspace expert layer: construction, the forward formula, orthogonality losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from moe_zoo.aigi.svd import SVDExpertLinear, replace_layers
from moe_zoo.core import InputError


def _linear(out_f=12, in_f=10, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f)


@pytest.mark.parametrize("expert", [0, 1, 2])
def test_each_expert_alone_equals_the_pretrained_linear(expert):
    base = _linear()
    layer = SVDExpertLinear(base, n_experts=3, rank=3)
    x = torch.randn(5, 7, 10)
    gates = torch.zeros(5, 3)
    gates[:, expert] = 1.0
    layer.gates = gates
    torch.testing.assert_close(layer(x), base(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.effective_weight(gates[0]), base.weight, atol=1e-6, rtol=1e-6)


def test_gates_summing_to_one_equal_the_pretrained_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(16, 24, 1)
    layer = SVDExpertLinear(conv, n_experts=4, rank=4)
    x = torch.randn(3, 16, 5, 5)
    layer.gates = torch.softmax(torch.randn(3, 4), -1)
    torch.testing.assert_close(layer(x), conv(x), atol=1e-5, rtol=1e-5)


def test_main_subspace_is_the_top_singular_triplets():
    base = _linear(20, 16)
    layer = SVDExpertLinear(base, n_experts=2, rank=5)
    u, s, vh = torch.linalg.svd(base.weight.double(), full_matrices=False)
    top = (u[:, :11] * s[:11]) @ vh[:11]
    torch.testing.assert_close(layer.weight_main.double(), top, atol=1e-6, rtol=0)
    torch.testing.assert_close(layer.S_experts[1].double(), s[11:], atol=1e-6, rtol=0)
    assert layer.U_main.shape == (20, 11) and layer.V_main.shape == (11, 16)


@pytest.mark.parametrize("chunk_once", [False, True])
def test_forward_matches_the_docstring_formula_per_image(chunk_once):
    layer = SVDExpertLinear(_linear(), n_experts=3, rank=2, chunk_once=chunk_once)
    chunk = (layer.U_experts[0] * layer.S_experts[0]) @ layer.V_experts[0]         # initial residual chunk
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(4, 6, 10)
    gates = torch.rand(4, 3) * (torch.rand(4, 3) > 0.4)
    layer.gates = gates
    expected = []
    for b in range(4):
        y = x[b] @ layer.weight_main.T + layer.bias
        for k in range(3):
            y = y + gates[b, k] * ((x[b] @ layer.V_experts[k].T) * layer.S_experts[k]) @ layer.U_experts[k].T
        if chunk_once:           # the chunk counted once: - (G - 1) x C^T
            y = y - (gates[b].sum() - 1) * x[b] @ chunk.detach().T
        expected.append(y)
    torch.testing.assert_close(layer(x), torch.stack(expected), atol=1e-5, rtol=1e-5)


def _pair(a, b):
    return torch.sqrt(((a.T @ b) ** 2).sum())


def test_orthogonality_losses_against_their_formulas():
    layer = SVDExpertLinear(_linear(14, 12), n_experts=3, rank=2)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p))
    un = [layer.U_experts[e] / layer.U_experts[e].norm(dim=0, keepdim=True) for e in range(3)]
    vn = [(layer.V_experts[e] / layer.V_experts[e].norm(dim=1, keepdim=True)).T for e in range(3)]
    um, vm = layer.U_main, layer.V_main.T
    main = [_pair(um, un[e]) + _pair(vm, vn[e]) for e in range(3)]
    # artifact = expert 2: only against the main subspace
    torch.testing.assert_close(layer.targeted_orthogonal_loss(2, artifact=2), main[2])
    # semantic expert 1: main + expert 0
    want = (main[1] + _pair(un[0], un[1]) + _pair(vn[0], vn[1])) / 2
    torch.testing.assert_close(layer.targeted_orthogonal_loss(1, artifact=2), want)
    # the earlier expert is detached: no gradient reaches it
    layer.targeted_orthogonal_loss(1, artifact=2).backward()
    assert layer.U_experts[0].grad is None and layer.U_experts[1].grad is not None
    bases = [(um, vm), *zip(un, vn, strict=True)]
    pairs = [_pair(bases[i][0], bases[j][0]) + _pair(bases[i][1], bases[j][1]) for i in range(4) for j in range(i + 1, 4)]
    torch.testing.assert_close(layer.full_orthogonal_loss(), torch.stack(pairs).mean())


def test_orthogonality_is_zero_for_a_fresh_expert_and_positive_once_it_leaves_its_subspace():
    layer = SVDExpertLinear(_linear(16, 16), n_experts=2, rank=3)
    assert float(layer.targeted_orthogonal_loss(0, artifact=1).detach()) < 1e-5
    with torch.no_grad():
        layer.U_experts[0].copy_(layer.U_main[:, :3])
    assert float(layer.targeted_orthogonal_loss(0, artifact=1).detach()) > 0.5


def test_bad_layers_and_ranks_are_refused():
    with pytest.raises(InputError, match="rank"):
        SVDExpertLinear(_linear(8, 4), n_experts=2, rank=4)
    with pytest.raises(InputError, match="pointwise"):
        SVDExpertLinear(nn.Conv2d(4, 4, 3), n_experts=2, rank=1)
    with pytest.raises(RuntimeError, match="gates"):
        SVDExpertLinear(_linear(), n_experts=1, rank=1)(torch.randn(2, 10))
    with pytest.raises(InputError, match="no layer"):
        replace_layers(nn.Sequential(nn.ReLU()), lambda n, m: isinstance(m, nn.Linear), 2, 1)


@pytest.mark.parametrize("conv", [False, True])
def test_one_shared_gate_row_uses_the_merged_weight_and_equals_the_per_image_path(conv):
    torch.manual_seed(3)
    layer = SVDExpertLinear(nn.Conv2d(12, 9, 1) if conv else _linear(), n_experts=3, rank=2)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(4, 12, 3, 3) if conv else torch.randn(4, 5, 10)
    row = torch.tensor([[0.7, 0.0, 1.0]])
    layer.gates = row.expand(4, 3).contiguous()        # four identical rows: per-image low-rank path
    per_image = layer(x)
    layer.gates = row                                  # one row for the batch: W_eff path
    torch.testing.assert_close(layer(x), per_image, atol=1e-5, rtol=1e-5)
    weight = layer.weight_main + sum(g * (u * s) @ v for g, u, s, v in zip(row[0], layer.U_experts, layer.S_experts,
                                                                          layer.V_experts, strict=True))
    weight = weight - (row.sum() - 1) * (layer.U_chunk * layer.S_chunk) @ layer.V_chunk      # chunk_once
    torch.testing.assert_close(layer.effective_weight(row[0]), weight, atol=1e-6, rtol=1e-6)


def test_folding_an_output_affine_is_exact():
    torch.manual_seed(4)
    layer = SVDExpertLinear(nn.Conv2d(8, 6, 1), n_experts=2, rank=2)
    x = torch.randn(3, 8, 4, 4)
    layer.gates = torch.rand(3, 2)
    scale, shift = torch.rand(6) + 0.5, torch.randn(6)
    expected = layer(x) * scale[None, :, None, None] + shift[None, :, None, None]
    layer.fold_output_affine(scale, shift)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_chunk_once_keeps_the_pretrained_map_for_any_gate_sum_at_initialisation():
    torch.manual_seed(5)
    conv = nn.Conv2d(16, 24, 1)
    x = torch.randn(3, 16, 4, 4)
    gates = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.3, 0.7, 0.0, 1.0]])   # semantic + artifact
    once = SVDExpertLinear(conv, n_experts=4, rank=4)
    once.gates = gates
    torch.testing.assert_close(once(x), conv(x), atol=1e-5, rtol=1e-5)
    official = SVDExpertLinear(conv, n_experts=4, rank=4, chunk_once=False)
    official.gates = gates
    chunk = (official.U_experts[0] * official.S_experts[0]) @ official.V_experts[0]
    torch.testing.assert_close(official(x), conv(x) + torch.nn.functional.conv2d(x, chunk[:, :, None, None]).detach(),
                               atol=1e-5, rtol=1e-5)
