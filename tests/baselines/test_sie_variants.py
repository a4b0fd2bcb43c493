"""Each SIE variant against the authors' formula written out term by term (their `src/models.py`, SPEC 3 and 3a)."""

import pytest
import torch
import torch.nn.functional as F

from iebench.baselines.config import ConfigError, TrainConfig
from iebench.baselines.methods import build_method

SIM, EQUI_FACTOR, STD, COV = 10.0, 0.45, 10.0, 1.0


def authors_predict(hypernet: torch.nn.Module, x_equi: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Their ParametrizedNet: w = hypernet(z) viewed (N, out, in); out = bmm(x.unsqueeze(1), w^T)."""
    d = x_equi.shape[1]
    w = hypernet(z).view(-1, d, d)
    return torch.bmm(x_equi.unsqueeze(1), w.transpose(-2, -1)).squeeze(1)


def std_loss(*tensors: torch.Tensor) -> torch.Tensor:
    out = 0
    for t in tensors:
        t = t - t.mean(dim=0)
        out = out + torch.mean(F.relu(1 - torch.sqrt(t.var(dim=0) + 0.0001))) / 2
    return out


def cov_loss(*tensors: torch.Tensor) -> torch.Tensor:
    out = 0
    for t in tensors:
        t = t - t.mean(dim=0)
        cov = (t.T @ t) / (t.shape[0] - 1)  # theirs divides by the configured batch size - 1: equal on a full batch
        off = cov - torch.diag(torch.diagonal(cov))
        out = out + off.pow(2).sum() / cov.shape[0]
    return out


def authors_loss(method, variant: str, view1, view2, z) -> torch.Tensor:
    """The loss of SIE, SIERotColor, SIENoVar or SIEOnlyEqui as their forward computes it."""
    x_emb, y_emb = method.backbone(view1), method.backbone(view2)
    hypernet = method.predictor.hyper
    if variant == "sie-onlyequi":
        x = method.equi_projector(x_emb)
        y = method.equi_projector(y_emb)
        pred = authors_predict(hypernet, x, z)
        return SIM * F.mse_loss(pred, y) + STD * std_loss(x, y) + STD * std_loss(pred) + COV * cov_loss(x, y)
    inv = x_emb.shape[1] - 256
    x_inv, y_inv = method.inv_projector(x_emb[:, :inv]), method.inv_projector(y_emb[:, :inv])
    x_equi, y_equi = method.equi_projector(x_emb[:, inv:]), method.equi_projector(y_emb[:, inv:])
    x, y = torch.cat((x_inv, x_equi), dim=1), torch.cat((y_inv, y_equi), dim=1)
    pred = authors_predict(hypernet, x_equi, z)
    loss = SIM * F.mse_loss(x_inv, y_inv) + EQUI_FACTOR * SIM * F.mse_loss(pred, y_equi) + STD * std_loss(x, y) + COV * cov_loss(x, y)
    if variant != "sie-novar":  # SIE and SIERotColor add the variance term on the predictions
        loss = loss + STD * std_loss(pred)
    return loss


@pytest.mark.parametrize(
    "variant, action_dim, depth", [("sie", 4, 1), ("sie-rotcolor", 6, 1), ("sie-novar", 4, 1), ("sie-onlyequi", 4, 1), ("sie", 4, 3)]
)
def test_variant_loss_is_the_authors(variant, action_dim, depth):
    torch.manual_seed(0)
    config = TrainConfig(method=variant, projector=(24, 24, 24), predictor_depth=depth, image_size=None, stem="small")
    method = build_method(config, action_dim).double().train()
    generator = torch.Generator().manual_seed(1)
    view1, view2 = (torch.randn(6, 3, 16, 16, generator=generator, dtype=torch.float64) for _ in range(2))
    z = torch.randn(6, action_dim, generator=generator, dtype=torch.float64)
    ours = method(view1, view2, z)["loss"]
    assert ours.item() == pytest.approx(authors_loss(method, variant, view1, view2, z).item(), rel=1e-10)


def test_the_deep_hypernetwork_is_the_authors():
    """Linear(k, k)-ReLU-Linear(k, k)-ReLU-Linear(k, d^2), all without bias."""
    method = build_method(TrainConfig(projector=(8, 8, 8), predictor_depth=3, image_size=None), 4)
    layers = method.predictor.hyper
    shapes = [tuple(m.weight.shape) for m in layers if isinstance(m, torch.nn.Linear)]
    assert shapes == [(4, 4), (4, 4), (64, 4)]
    assert all(m.bias is None for m in layers if isinstance(m, torch.nn.Linear))
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert sorted(k for k in method.state_dict() if k.startswith("predictor.")) == [f"predictor.hyper.{i}.weight" for i in (0, 2, 4)]
    with pytest.raises(ConfigError, match="predictor_depth must be 1"):
        TrainConfig(predictor_depth=2).validate()
