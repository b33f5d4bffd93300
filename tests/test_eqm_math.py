"""The pure EqM math: c(γ) schedules, interpolation, regression target, NAG sampler."""

import pytest
import torch

from snake_world_eqm.eqm import gradient_scale, interpolate, nag_descent, target_gradient

A, B, LAM = 0.8, 1.5, 4.0


def _c(schedule, gamma):
    return float(gradient_scale(torch.tensor(gamma), schedule, multiplier=LAM, a=A, b=B))


@pytest.mark.parametrize(
    ("schedule", "at_zero", "at_a", "at_one"),
    [
        ("linear", LAM, LAM * (1 - A), 0.0),
        ("truncated", LAM, LAM, 0.0),
        ("piecewise", LAM * B, LAM, 0.0),
    ],
)
def test_schedule_values_at_zero_a_one(schedule, at_zero, at_a, at_one):
    assert _c(schedule, 0.0) == pytest.approx(at_zero)
    assert _c(schedule, A) == pytest.approx(at_a)
    assert _c(schedule, 1.0) == pytest.approx(at_one, abs=1e-7)


def test_schedule_segments_are_linear():
    # Midpoints of each segment are the average of its ends.
    assert _c("truncated", 0.9) == pytest.approx(LAM * 0.5)
    assert _c("piecewise", A / 2) == pytest.approx(LAM * (B + 1) / 2)
    assert _c("linear", 0.25) == pytest.approx(LAM * 0.75)


def test_schedule_rejects_bad_input():
    with pytest.raises(ValueError, match="schedule"):
        gradient_scale(torch.tensor([0.5]), "cosine")
    with pytest.raises(ValueError, match="gamma"):
        gradient_scale(torch.tensor([1.5]), "linear")
    with pytest.raises(ValueError, match="a must"):
        gradient_scale(torch.tensor([0.5]), "truncated", a=1.0)


def test_interpolation_endpoints():
    x, eps = torch.randn(3, 5), torch.randn(3, 5)
    gamma = torch.tensor([1.0, 0.0, 0.25])
    xg = interpolate(x, eps, gamma)
    torch.testing.assert_close(xg[0], x[0])
    torch.testing.assert_close(xg[1], eps[1])
    torch.testing.assert_close(xg[2], 0.25 * x[2] + 0.75 * eps[2])
    with pytest.raises(ValueError, match="same shape"):
        interpolate(x, eps[:, :2], gamma)


def test_target_sign_and_scale():
    torch.manual_seed(0)
    x, eps = torch.randn(6, 4), torch.randn(6, 4)
    gamma = torch.rand(6) * 0.9
    target = target_gradient(x, eps, gamma, "linear", multiplier=LAM)
    # Scale: exactly (ε - x)·λ(1 - γ).
    torch.testing.assert_close(target, (eps - x) * (LAM * (1 - gamma))[:, None])
    # Sign: the target points from the data toward the noise, so one descent step of size 1/λ from x_γ
    # lands exactly on the data (the linear schedule's field is λ·(x_γ - x)).
    xg = interpolate(x, eps, gamma)
    torch.testing.assert_close(xg - target / LAM, x)
    # At the data (γ = 1) the target vanishes: data points are stationary.
    assert torch.count_nonzero(target_gradient(x, eps, torch.ones(6), "truncated", LAM)) == 0


def test_nag_two_steps_by_hand():
    # f(p) = p (energy ½x²), x0 = 1, η = 0.5, μ = 0.5:
    # k=0: p = 1 (no history), x1 = 1 - 0.5·1 = 0.5
    # k=1: p = 0.5 + 0.5·(0.5 - 1) = 0.25, x2 = 0.5 - 0.5·0.25 = 0.375
    res = nag_descent(lambda p, idx: p, torch.tensor([[1.0]]), num_steps=2, step_size=0.5, momentum=0.5,
                      return_trajectory=True)
    torch.testing.assert_close(res.trajectory[:, 0, 0], torch.tensor([1.0, 0.5, 0.375]))
    assert res.x.item() == pytest.approx(0.375)
    assert res.num_steps.tolist() == [2]
    assert res.grad_norm.item() == pytest.approx(0.25)  # ‖f‖ at the last look-ahead point


def test_nag_adaptive_stop_per_sample():
    # f(p) = p; sample 0 starts tiny and stops at once, sample 1 needs several halvings.
    x0 = torch.tensor([[0.01, 0.0], [8.0, 0.0]])
    calls = []

    def field(p, idx):
        calls.append(idx.tolist())
        return p

    res = nag_descent(field, x0, num_steps=10, step_size=0.5, momentum=0.0, adaptive_threshold=0.1)
    # Sample 1 is evaluated at 8, 4, 2, 1, 0.5, 0.25, 0.125 (each ≥ 0.1: update) and at 0.0625 (< 0.1: stop,
    # no update) = 8 evaluations.
    assert res.num_steps.tolist() == [1, 8]
    torch.testing.assert_close(res.x[0], x0[0])  # stopped sample is not updated
    assert res.x[1, 0].item() == pytest.approx(0.0625)
    # Only still-active samples are evaluated.
    assert calls[0] == [0, 1] and all(c == [1] for c in calls[1:])
    assert res.grad_norm.tolist() == pytest.approx([0.01, 0.0625])


def test_nag_update_mask_holds_coordinates():
    x0 = torch.tensor([[1.0, 2.0, 3.0]])
    res = nag_descent(lambda p, idx: p, x0, num_steps=5, step_size=0.5, momentum=0.3,
                      update_mask=torch.tensor([True, True, False]), return_trajectory=True)
    assert res.x[0, 2].item() == 3.0
    assert res.x[0, :2].abs().max() < 0.2
    assert res.trajectory.shape == (6, 1, 3)


def test_nag_trajectory_padded_after_early_stop():
    res = nag_descent(lambda p, idx: p, torch.tensor([[0.01]]), num_steps=4, step_size=0.5,
                      adaptive_threshold=1.0, return_trajectory=True)
    assert res.trajectory.shape == (5, 1, 1)
    assert torch.all(res.trajectory == 0.01)


def test_nag_rejects_bad_arguments():
    with pytest.raises(ValueError, match="x0"):
        nag_descent(lambda p, i: p, torch.zeros(3), 2, 0.1)
    with pytest.raises(ValueError, match="momentum"):
        nag_descent(lambda p, i: p, torch.zeros(1, 3), 2, 0.1, momentum=1.0)


def test_nag_paths_agree_when_nobody_stops():
    # The gather-free path (no threshold) and the per-sample path must compute the same iterates.
    torch.manual_seed(0)
    weight = torch.randn(4, 4) * 0.3 + torch.eye(4)
    x0 = torch.randn(3, 4)
    plain = nag_descent(lambda p, i: p @ weight, x0, 6, 0.3, 0.4)
    gated = nag_descent(lambda p, i: p @ weight, x0, 6, 0.3, 0.4, adaptive_threshold=1e-12)
    torch.testing.assert_close(plain.x, gated.x)
    torch.testing.assert_close(plain.grad_norm, gated.grad_norm)
    torch.testing.assert_close(plain.last_field, gated.last_field)
    assert plain.num_steps.tolist() == gated.num_steps.tolist() == [6, 6, 6]
