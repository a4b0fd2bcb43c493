"""Every method: its loss against a written-out formula, a real CPU step, and the reconstruction decoder's wiring."""

import numpy as np
import pytest
import torch

from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.losses import info_nce, vicreg_loss
from iebench.baselines.methods import METHODS, build_method, default_action, registered
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


SMALL_DECODER = {"decoder_blocks": 2, "decoder_width": 48}


def config_for(method: str, **changes) -> TrainConfig:
    values = dict(method=method, projector=(32, 32, 32), image_size=64, extra=SMALL_DECODER if method == "recon-xattn" else {})
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
    images = torch.randn(2, 3, 64, 64)
    tokens, representation = recon.tokens_and_representation(images)  # one encoder pass gives both
    assert tokens.shape == (2, 16, 192)  # 4 x 4 patches, the equivariant half
    assert torch.allclose(representation, recon.backbone(images), atol=1e-6)


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
    recon = build_method(config_for("recon-xattn"), 0)  # learns without actions: a zero-width action is enough
    terms = recon(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64), torch.zeros(2, 0))
    assert torch.isfinite(terms["loss"]) and terms["reconstruction"] > 0
    assert not registered("recon-xattn").needs_action and registered("sie").needs_action


def test_method_settings_are_typed_and_checked_when_the_configuration_loads():
    assert TrainConfig(method="simclr", extra={"temperature": 0.2}).extra.temperature == 0.2
    assert TrainConfig(method="simclr").extra.temperature == 0.1  # the default
    recon = build_method(config_for("recon-xattn", extra={"decoder_blocks": 3, "decoder_width": 24, "recon_weight": 2}), 0)
    assert recon.recon_weight == 2.0 and isinstance(recon.recon_weight, float)
    assert len(recon.decoder.blocks.layers) == 2 and recon.decoder.width == 24
    with pytest.raises(ConfigError, match="method 'simclr' has no setting 'temprature'"):
        TrainConfig(method="simclr", extra={"temprature": 0.2})
    with pytest.raises(ConfigError, match="method 'sie' has no setting 'decoder_blocks'.*none"):
        TrainConfig(method="sie", extra={"decoder_blocks": 2})
    with pytest.raises(ConfigError, match="setting 'decoder_blocks' must be int, got 2.5"):
        TrainConfig(method="recon-xattn", extra={"decoder_blocks": 2.5})
    with pytest.raises(ConfigError, match="setting 'temperature' must be float, got True"):
        TrainConfig(method="equimod", extra={"temperature": True})


def test_settings_survive_config_json_and_an_extra_table_in_toml(tmp_path):
    from iebench.baselines.config import resolve

    config = TrainConfig(method="simclr-augself", extra={"augself_weight": 0.5})
    again = TrainConfig.from_json(config.to_json())
    assert again.extra == config.extra and again.to_json()["extra"] == {"temperature": 0.1, "augself_weight": 0.5}
    assert TrainConfig.from_json({"method": "sie", "extra": {}}).fingerprint() == TrainConfig(method="sie").fingerprint()
    toml = tmp_path / "run.toml"
    toml.write_text('method = "recon-xattn"\nimage_size = 64\n[extra]\ndecoder_blocks = 2\n')
    assert resolve(config_file=toml).extra.decoder_blocks == 2
    toml.write_text('method = "recon-xattn"\n[extra]\ndecoder_blokcs = 2\n')
    with pytest.raises(ConfigError, match="'recon-xattn' has no setting 'decoder_blokcs'"):
        resolve(config_file=toml)
    toml.write_text("[extra]\ntemperature = 0.2\n")  # the method comes from the flag: flags win, the file's settings are its
    assert resolve(config_file=toml, method="simclr").extra.temperature == 0.2


def test_the_registry_is_the_one_list_of_methods():
    from click.testing import CliRunner

    from iebench.cli import main

    train_method = next(p for p in main.commands["train"].params if p.name == "method")
    assert list(train_method.type.choices) == list(METHODS)
    listed = CliRunner().invoke(main, ["methods"]).output.splitlines()
    assert [line.split() for line in listed] == [[name, entry.default_action] for name, entry in METHODS.items()]
    assert default_action("simclr-augself") == "rotation"  # AugSelf regresses the action: it needs one
    for name, entry in METHODS.items():  # every line builds: its module and class exist, its options fit the class
        method = build_method(config_for(name), action_dim(name))
        assert type(method).__name__ == entry.cls
