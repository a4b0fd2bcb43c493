"""Claim (b) of the mini: SIE rotation + colour against SIE on colour R^2, with no pixels or untrained floor."""

import pytest

from iebench.orchestration.verdicts import claims


def _seeds(*values: float) -> dict[int, float]:
    return dict(enumerate(values))


def _claim_b(values: dict) -> dict:
    return next(c for c in claims(values) if c["claim"].startswith("(b)"))


# The last 3-seed laptop run (docs/mini.md, 2026-11-30): colour R^2 (SIE) per seed, SIE rotation + colour minus SIE
# +0.230, +0.126, +0.218 (margin +0.191, spread 0.057); the thumbnails' 0.756 and the untrained network's 0.614 are above both.
TOP1 = {"top-1 (all, %)": _seeds(95.0, 95.0, 95.0)}
LAPTOP = {
    "sie": {"colour R^2 (SIE)": _seeds(0.280, 0.368, 0.291), **TOP1},
    "sie-rotcolor": {"colour R^2 (SIE)": _seeds(0.510, 0.494, 0.509), **TOP1},
    "pixels": {"colour R^2 (SIE)": _seeds(0.756, 0.748, 0.764), **TOP1},
    "random init": {"colour R^2 (SIE)": _seeds(0.614, 0.600, 0.627), "top-1 (all, %)": _seeds(33.0, 30.0, 35.0)},
}


def test_b_holds_by_its_margin_over_sie_even_below_the_pixels_and_the_untrained_rows():
    found = _claim_b(LAPTOP)
    assert found["verdict"] == "holds" and found["versus"] == "sie"
    assert found["margin"] == pytest.approx(0.1913, abs=1e-4) and found["per_seed"] == pytest.approx([0.230, 0.126, 0.218])
    assert found["margin"] > 2 * found["spread"]
    assert "pixels" not in found["claim"]  # no floor named: the rows stay as context


def test_b_is_inconclusive_within_twice_the_spread_and_fails_when_reversed():
    close = {**LAPTOP, "sie-rotcolor": {"colour R^2 (SIE)": _seeds(0.280 + 0.2, 0.368 - 0.1, 0.291 + 0.05), **TOP1}}
    found = _claim_b(close)  # margin +0.05, spread 0.15: within twice the spread
    assert found["verdict"] == "inconclusive"
    reversed_ = {**LAPTOP, "sie": LAPTOP["sie-rotcolor"], "sie-rotcolor": LAPTOP["sie"]}
    assert _claim_b(reversed_)["verdict"] == "fails"
    one_seed = {name: {m: {0: v[0]} for m, v in metrics.items()} for name, metrics in LAPTOP.items()}
    assert _claim_b(one_seed)["verdict"] == "inconclusive"


def test_c_keeps_the_pixels_floor():
    found = next(c for c in claims(LAPTOP) if c["claim"].startswith("(c)"))
    # every trained method beats the untrained backbone by 62 points on every seed, but not the thumbnails' 95.0
    assert found["verdict"] == "inconclusive" and "(the winner does not beat the pixels row)" in found["claim"]
