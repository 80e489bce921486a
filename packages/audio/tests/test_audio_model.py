import math

import pytest
import torch
from audio_helpers import TINY

from moe_zoo.audio.batching import Example, collate
from moe_zoo.audio.generate import generate_codes
from moe_zoo.audio.model import UniMoEAudio
from moe_zoo.audio.tokens import apply_delay
from moe_zoo.core import InputError, MoELayer, create_model
from moe_zoo.core.activations import activate


def test_top_p_with_null_and_shared_experts_hand_worked():
    layer = MoELayer(TINY.moe_config()).eval()
    # router ids: 0..7 routed FFN experts, 8, 9 shared FFN experts, 10 the null expert
    probs = torch.full((11,), 0.10 / 6)
    probs[[0, 10, 1, 8, 9]] = torch.tensor([0.40, 0.20, 0.15, 0.10, 0.05])
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[:, 0] = probs.log()
    x = torch.zeros(1, TINY.d_model)
    x[0, 0] = 1.0
    out = layer(x)
    # race without shared: 0 (.40) keeps, null (.20) keeps at .40 < .7, 1 (.15) keeps at .60 < .7,
    # the next (.0167) starts at .75 >= .7: dropped. Shared 8, 9 always added.
    chosen = {int(i) for i in out.routing.indices[0] if i >= 0}
    assert chosen == {0, 1, 8, 9, 10}
    dense = out.routing.dense_weights()[0]
    total = 0.40 + 0.20 + 0.15 + 0.10 + 0.05
    for e, p in ((0, 0.40), (10, 0.20), (1, 0.15), (8, 0.10), (9, 0.05)):
        assert dense[e].item() == pytest.approx(p / total, rel=1e-5)
    bank = layer.experts

    def expert(e):
        return activate(x @ bank.w_in[e], "swiglu") @ bank.w_out[e]

    expected = sum(dense[e] * expert(e) for e in (0, 1, 8, 9))  # the null expert adds zeros
    assert torch.allclose(out.output, expected, atol=1e-6)


def test_forward_shapes_aux_loss_and_baselines():
    cond = torch.randint(0, 50, (2, 12))
    audio = torch.randint(0, 19, (2, 12, 2))
    audio[:, :4] = -1
    for cfg in (TINY, TINY.replace(ffn="dense"), TINY.replace(router="topk")):
        torch.manual_seed(0)
        model = UniMoEAudio(cfg)
        out = model(cond, audio)
        assert out.logits.shape == (2, 12, 2, 19)
        assert len(out.routings) == (0 if cfg.ffn == "dense" else 2)
        if out.routings:
            aux = model.aux_loss(out.routings)
            assert math.isfinite(aux.item()) and aux.item() > 0


def test_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    model = UniMoEAudio(TINY).eval()
    cond = torch.randint(0, 50, (1, 10))
    audio = torch.randint(0, 19, (1, 10, 2))
    audio[:, :5] = -1
    full = model(cond, audio).logits
    caches = [{} for _ in model.blocks]
    first = model(cond[:, :7], audio[:, :7], caches).logits
    rest = [model(cond[:, i:i + 1], audio[:, i:i + 1], caches, start=i).logits for i in range(7, 10)]
    assert torch.allclose(torch.cat([first, *rest], 1), full, atol=1e-5)


def test_collate_targets_are_next_frames():
    grid = apply_delay(torch.randint(0, 16, (2, 5)), (0, 1), 16)
    batch = collate([Example("speech", [2, 3, 4], grid)], 16)
    assert batch.cond.shape == (1, 3 + grid.shape[1])
    assert batch.audio[0, 3].eq(17).all()  # BOS frame right after the prefix
    assert torch.equal(batch.audio[0, 4], grid[:, 0])
    assert torch.equal(batch.target[0, 3, 0], grid[0, 0])
    assert batch.target[0, :3].eq(-100).all()


def test_short_generation_respects_the_delay_pattern():
    torch.manual_seed(0)
    model = UniMoEAudio(TINY).eval()
    codes = generate_codes(model, [2, 5, 6, 1], max_frames=12, seed=0, min_frames=3)
    assert codes.shape[0] == 2 and 3 <= codes.shape[1] <= 12
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    again = generate_codes(model, [2, 5, 6, 1], max_frames=12, seed=0, min_frames=3)
    assert torch.equal(codes, again)
    with pytest.raises(InputError):
        generate_codes(model, [], max_frames=5)


def test_registry_has_the_three_models():
    for name in ("unimoe-audio-tiny", "unimoe-audio-dense", "unimoe-audio-topk"):
        assert isinstance(create_model(name, d_model=32, n_heads=2, n_layers=1), UniMoEAudio)
