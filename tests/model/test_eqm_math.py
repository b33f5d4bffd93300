"""The pure EqM math: c(γ) schedules, interpolation, regression target, NAG sampler."""

import pytest
import torch

from snake_world_eqm.eqm import check_init_scale, gradient_scale, interpolate, nag_descent, target_gradient

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


def test_init_scale_is_a_finite_number_at_least_zero_and_a_bad_one_is_named():
    # The sampler's start x0 ~ N(0, init_scale² I): 0 (start at the origin) and any finite positive number
    # are fine and come back as a float; the error names the setting (the caller's name for it) and the value.
    assert check_init_scale(0) == 0.0 and type(check_init_scale(0)) is float
    assert check_init_scale(2.5) == 2.5 and check_init_scale(3) == 3.0
    for bad in (-0.1, float("inf"), float("nan"), True, "1", None):
        with pytest.raises(ValueError, match=r"^init_scale must be a finite number >= 0, got "):
            check_init_scale(bad)
    with pytest.raises(ValueError, match=r"^planner init_scale must be a finite number >= 0, got -1 "):
        check_init_scale(-1, "planner init_scale")


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


# Non-default a and b: every test above uses a = 0.8 and b = 1.5, the defaults, so a schedule that ignored
# them would pass. These use a = 0.5, b = 2.
@pytest.mark.parametrize(
    ("schedule", "gamma", "expected"),
    [
        ("truncated", 0.25, 1.0),  # flat before a
        ("truncated", 0.75, 0.5),  # (1 - 0.75) / (1 - 0.5)
        ("piecewise", 0.0, 2.0),  # b at the noise
        ("piecewise", 0.25, 1.5),  # halfway from b to 1
        ("piecewise", 0.5, 1.0),  # 1 at γ = a
        ("piecewise", 0.9, 0.2),  # (1 - 0.9) / (1 - 0.5)
    ],
)
def test_schedule_and_target_honour_non_default_a_and_b(schedule, gamma, expected):
    scale = gradient_scale(torch.tensor([gamma]), schedule, multiplier=LAM, a=0.5, b=2.0)
    assert scale.item() == pytest.approx(LAM * expected)
    x, eps = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 3.0]])
    target = target_gradient(x, eps, torch.tensor([gamma]), schedule, multiplier=LAM, a=0.5, b=2.0)
    torch.testing.assert_close(target, (eps - x) * LAM * expected)


def test_nag_adaptive_stop_keeps_the_update_mask():
    # A held coordinate (the action, when the planner asks "what if") must not drift on the adaptive path
    # either, and the stopping norm is measured over the moving coordinates only.
    x0 = torch.tensor([[4.0, 0.0, 3.0], [0.05, 0.0, 9.0]])
    mask = torch.tensor([True, True, False])
    res = nag_descent(lambda p, idx: p, x0, num_steps=10, step_size=0.5, momentum=0.3,
                      adaptive_threshold=0.1, update_mask=mask, return_trajectory=True)
    assert res.x[:, 2].tolist() == [3.0, 9.0]
    assert torch.all(res.trajectory[:, :, 2] == x0[:, 2])
    assert res.x[0, 0].abs().item() < 0.2
    # Sample 1's moving part has norm 0.05 < 0.1: it stops at its first evaluation (its held 9 does not count).
    assert res.num_steps[1].item() == 1 and res.grad_norm[1].item() == pytest.approx(0.05)
    assert torch.all(res.last_field[:, 2] == 0)


def test_nag_per_sample_mask_on_both_paths():
    x0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (B, D): a different held coordinate per sample
    for threshold in (None, 1e-9):
        res = nag_descent(lambda p, idx: p, x0, num_steps=3, step_size=0.5, adaptive_threshold=threshold,
                          update_mask=mask)
        assert res.x[0, 1].item() == 2.0 and res.x[1, 0].item() == 3.0
        assert res.x[0, 0].item() == pytest.approx(0.125) and res.x[1, 1].item() == pytest.approx(0.5)


def test_defaults_are_the_linear_schedule_with_multiplier_one_and_b_one_and_a_half():
    gamma = torch.tensor([0.0, 0.3, 0.9])
    torch.testing.assert_close(gradient_scale(gamma), 1.0 - gamma)
    assert gradient_scale(torch.tensor([0.0]), "piecewise").item() == pytest.approx(1.5)  # b = 1.5 by default
    assert gradient_scale(torch.tensor([0.4]), "piecewise").item() == pytest.approx(1.5 - 0.5 * 0.4 / 0.8)  # a = 0.8
    x, eps = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(target_gradient(x, eps, torch.tensor([0.3])), (eps - x) * 0.7)
    torch.testing.assert_close(target_gradient(x, eps, torch.tensor([0.0]), "piecewise"), (eps - x) * 1.5)


def test_schedule_error_messages_are_exact_and_a_must_be_strictly_positive():
    with pytest.raises(ValueError, match=r"^gamma must lie in \[0, 1\]$"):
        gradient_scale(torch.tensor([-0.1]))
    with pytest.raises(ValueError, match=r"^a must be in \(0, 1\), got 0.0$"):
        gradient_scale(torch.tensor([0.5]), "piecewise", a=0.0)
    with pytest.raises(ValueError, match=r"^schedule must be one of"):
        gradient_scale(torch.tensor([0.5]), "LINEAR")


def test_nag_argument_checks_are_each_enforced_and_one_step_is_allowed():
    message = r"^need num_steps >= 1, step_size > 0 and momentum in \[0, 1\)$"
    for kwargs in ({"num_steps": 0, "step_size": 0.1}, {"num_steps": 2, "step_size": 0.0},
                   {"num_steps": 2, "step_size": 0.1, "momentum": -0.1}):
        with pytest.raises(ValueError, match=message):
            nag_descent(lambda p, i: p, torch.ones(1, 2), **kwargs)
    res = nag_descent(lambda p, i: p, torch.ones(1, 2), num_steps=1, step_size=0.5)
    assert res.x.tolist() == [[0.5, 0.5]] and res.num_steps.tolist() == [1]


def test_nag_output_types_and_the_field_sees_every_sample_index():
    seen = []

    def field(p, idx):
        seen.append(idx.tolist())
        return p

    x0 = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([1.0, 1.0], dtype=torch.float64)
    plain = nag_descent(field, x0, num_steps=2, step_size=0.5)
    assert seen == [[0, 1], [0, 1]] and plain.trajectory is None
    assert plain.num_steps.dtype == torch.long and plain.grad_norm.dtype == torch.float64
    gated = nag_descent(field, x0, num_steps=2, step_size=0.5, adaptive_threshold=1e-6)
    assert gated.trajectory is None
    assert gated.num_steps.dtype == torch.long and gated.grad_norm.dtype == torch.float64
    # A mask of another dtype must not change the iterates' dtype.
    x32 = x0.float()
    assert nag_descent(field, x32, 2, 0.5, update_mask=mask).x.dtype == torch.float32
    assert nag_descent(field, x32, 2, 0.5, adaptive_threshold=1e-6, update_mask=mask).x.dtype == torch.float32


def test_nag_a_norm_equal_to_the_threshold_still_moves():
    res = nag_descent(lambda p, idx: p, torch.tensor([[0.5]]), num_steps=2, step_size=0.5, adaptive_threshold=0.5)
    # ‖f‖ = 0.5 is not below 0.5: update to 0.25, then ‖f‖ = 0.25 < 0.5 stops.
    assert res.x.item() == pytest.approx(0.25) and res.num_steps.tolist() == [2]


def test_nag_trajectory_pads_with_the_final_iterate():
    res = nag_descent(lambda p, idx: p, torch.tensor([[8.0]]), num_steps=12, step_size=0.5, adaptive_threshold=0.1,
                      return_trajectory=True)
    assert res.num_steps.tolist() == [8] and res.trajectory.shape == (13, 1, 1)
    assert res.trajectory[1].item() == 4.0
    assert torch.all(res.trajectory[8:] == res.x)


def test_nag_keeps_everything_on_the_input_device():
    # The meta device stands in for a GPU: any tensor created on the default device would show up as "cpu".
    seen = []

    def field(p, idx):
        seen.append(idx.device)
        return p

    res = nag_descent(field, torch.zeros(3, 2, device="meta"), num_steps=2, step_size=0.5)
    assert {res.x.device.type, res.num_steps.device.type, res.grad_norm.device.type} == {"meta"}
    assert [device.type for device in seen] == ["meta", "meta"]
    assert res.num_steps.dtype == torch.long
