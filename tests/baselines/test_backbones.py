"""The SIE authors' ResNet-18 against a functional transcription of SPEC 3a, its keys, size and initialisation."""

import pytest
import torch
import torch.nn.functional as F

from iebench.baselines.backbones import BACKBONES, build_backbone


def spec_keys() -> list[str]:
    """The state-dict keys SPEC 3a lists for the authors' resnet18()."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{b}" for b in bn)]
    for stage in range(1, 5):
        for block in range(2):
            p = f"layer{stage}.{block}"
            keys += [f"{p}.conv1.weight", *(f"{p}.bn1.{b}" for b in bn), f"{p}.conv2.weight", *(f"{p}.bn2.{b}" for b in bn)]
            if block == 0:
                keys += [f"{p}.downsample.0.weight", *(f"{p}.downsample.1.{b}" for b in bn)]
    return keys


def spec_forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SPEC 3a written out with functional ops over a state dict (BatchNorm on running statistics)."""

    def bn(name, t):
        return F.batch_norm(t, w[f"{name}.running_mean"], w[f"{name}.running_var"], w[f"{name}.weight"], w[f"{name}.bias"], False)

    x = F.pad(x, (2, 3, 2, 3))  # zero-pad left 2, right 3, top 2, bottom 3
    x = F.relu(bn("bn1", F.conv2d(x, w["conv1.weight"], stride=2, padding=0)))
    x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-1e4), 3, stride=2, padding=0)
    for stage, stride in zip(range(1, 5), (1, 2, 2, 2)):
        for block in range(2):
            p, s = f"layer{stage}.{block}", stride if block == 0 else 1
            out = F.relu(bn(f"{p}.bn1", F.conv2d(x, w[f"{p}.conv1.weight"], stride=1, padding=1)))
            if s == 2:  # the stride on the second convolution, after a (0, 1, 0, 1) zero pad
                out = F.conv2d(F.pad(out, (0, 1, 0, 1)), w[f"{p}.conv2.weight"], stride=2, padding=0)
            else:
                out = F.conv2d(out, w[f"{p}.conv2.weight"], stride=1, padding=1)
            out = bn(f"{p}.bn2", out)
            shortcut = bn(f"{p}.downsample.1", F.conv2d(x, w[f"{p}.downsample.0.weight"], stride=s)) if block == 0 else x
            x = F.relu(out + shortcut)
    return x.mean(dim=(2, 3))


def test_keys_size_and_initialisation_are_the_authors():
    torch.manual_seed(0)
    model = build_backbone("resnet18-sie")
    state = model.state_dict()
    assert list(state) == spec_keys()
    assert sum(p.numel() for p in model.parameters()) == 11_180_736
    assert sum(p.numel() for p in build_backbone("resnet18").parameters()) == 11_176_512
    for key, value in state.items():
        if key.endswith("bn2.weight"):
            assert torch.all(value == 0), key  # zero_init_residual=True: each block starts as its shortcut
        elif key.endswith(".weight") and value.dim() == 1:
            assert torch.all(value == 1), key
    conv = state["layer2.0.conv1.weight"]  # Kaiming normal, fan_out, relu: std sqrt(2 / (128 * 9))
    assert conv.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.05)


@pytest.mark.parametrize("size", [64, 65, 128])
def test_forward_matches_the_written_out_architecture(size):
    torch.manual_seed(1)
    model = build_backbone("resnet18-sie").double().eval()
    with torch.no_grad():  # random weights everywhere, the zero-initialised BatchNorms too
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif tensor.is_floating_point():
                tensor.normal_(0, 0.1)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    expected = spec_forward(model.state_dict(), x)
    assert torch.allclose(model(x), expected, rtol=1e-10, atol=1e-12)
    assert model(x).shape == (2, 512)
    assert model.feature_map(x).mean(dim=(2, 3)).allclose(expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, dim, parameters", [("resnet18-sie-w32", 256, 2_799_968), ("resnet18-sie-w16", 128, 702_384)])
def test_narrow_forms_are_the_same_network_at_a_smaller_width(name, dim, parameters):
    torch.manual_seed(2)
    model = build_backbone(name).double().eval()
    assert list(model.state_dict()) == spec_keys()
    assert sum(p.numel() for p in model.parameters()) == parameters
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5) if tensor.dim() == 1 else tensor.normal_(0, 0.1)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    assert model(x).shape == (2, dim) and model.dim == dim
    assert torch.allclose(model(x), spec_forward(model.state_dict(), x), rtol=1e-10, atol=1e-12)


def test_last_stride_one_keeps_the_weights_and_doubles_the_map():
    strided, unstrided = build_backbone("resnet18-sie"), build_backbone("resnet18-sie", last_stride=1)
    unstrided.load_state_dict(strided.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert strided.feature_map(x).shape[-1] * 2 == unstrided.feature_map(x).shape[-1]


def test_every_backbone_builds_and_an_unknown_one_is_refused():
    assert BACKBONES == ("resnet18-sie", "resnet18-sie-w32", "resnet18-sie-w16", "resnet18", "vit-s16")
    assert build_backbone("resnet18-sie", stem="small")(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        build_backbone("resnet50")
