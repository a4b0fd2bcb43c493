"""Every method: its loss against a written-out formula, a real CPU step, and the reconstruction decoder's wiring."""

import numpy as np
import pytest
import torch
from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.losses import info_nce, vicreg_loss
from iebench.baselines.methods import METHODS, build_method, default_action
from iebench.baselines.methods.recon import CrossAttentionDecoder

from .test_losses import mse, spec_cov, spec_std


def test_info_nce_matches_a_loop_over_anchors():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).numpy()
    total = 0.0
    for i in range(10):
        partner = (i + 5) % 10
        others = [j for j in range(10) if j != i]
        logits = np.array([z[i] @ z[j] / 0.1 for j in others])
        total += -(z[i] @ z[partner] / 0.1) + np.log(np.exp(logits).sum())
    assert info_nce(z1, z2, 0.1).item() == pytest.approx(total / 10, rel=1e-10)


def test_vicreg_matches_the_written_out_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 0.6, (7, 5)), rng.normal(0, 0.8, (7, 5))
    expected = 10 * mse(x, y) + 10 * (spec_std(x) + spec_std(y)) + spec_cov(x) + spec_cov(y)
    assert vicreg_loss(torch.tensor(x), torch.tensor(y))["loss"].item() == pytest.approx(expected, rel=1e-10)


def config_for(method: str, **changes) -> TrainConfig:
    values = dict(method=method, projector=(32, 32, 32), image_size=64, extra={"decoder_blocks": 2, "decoder_width": 48})
    values.update(changes)
    return TrainConfig(**values)


def action_dim(method: str) -> int:
    return {"rotation": 4, "rotation-color": 6, "none": 0}[default_action(method)]


@pytest.mark.parametrize("method", list(METHODS))
def test_one_batch_steps_lower_the_loss(method):
    torch.manual_seed(0)
    model = build_method(config_for(method), action_dim(method))
    x1, x2 = torch.randn(8, 3, 64, 64), torch.randn(8, 3, 64, 64)
    action = torch.randn(8, action_dim(method))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = model(x1, x2, action)["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_vit_small_backbone():
    model = build_method(config_for("simclr", backbone="vit-s16", image_size=32), 0)
    assert model.dim == 384 and model.inv_dim == 192
    assert sum(p.numel() for p in model.backbone.parameters()) > 21e6  # ViT-S/16: about 22 M parameters
    loss = model(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.zeros(4, 0))["loss"]
    assert torch.isfinite(loss)
    recon = build_method(config_for("recon-xattn", backbone="vit-s16", image_size=64), 0)
    assert torch.isfinite(recon(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64), torch.zeros(2, 0))["loss"])


def test_decoder_sees_view_2_only_through_the_attention_pattern():
    torch.manual_seed(0)
    decoder = CrossAttentionDecoder(token_dim=12, tokens=16, patch_pixels=20, width=24, blocks=3, heads=4).eval()
    same = torch.randn(2, 1, 12).expand(2, 16, 12)  # every view-1 token equal: the pattern cannot matter
    a, b = torch.randn(2, 16, 12), torch.randn(2, 16, 12)
    with torch.no_grad():
        assert torch.allclose(decoder(same, a), decoder(same, b), atol=1e-6)
        assert not torch.allclose(decoder(torch.randn(2, 16, 12), a), decoder(same, a), atol=1e-3)


def test_actions_are_required_where_a_method_needs_them():
    with pytest.raises(ConfigError, match="needs an action"):
        build_method(config_for("sie"), 0)
    with pytest.raises(ConfigError, match="at least 16"):
        build_method(config_for("recon-xattn", image_size=32), 0)
    assert build_method(config_for("recon-xattn"), 0) is not None  # learns without actions
