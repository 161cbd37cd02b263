"""Each metric primitive against a value known in closed form (l2l/scores.py)."""
import math

import numpy as np
import pytest
import torch
from scipy import linalg

from l2l import scores


def _gauss(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=g, dtype=torch.float64) * torch.tensor(std) + \
        torch.tensor(mean)


def _frechet(mu1, s1, mu2, s2):
    """The closed form ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with scipy."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero():
    x = _gauss(500, [0.0] * 8, [1.0] * 8, 0)
    assert scores.fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_two_gaussians_matches_the_closed_form():
    mu1, sd1, mu2, sd2 = [0.0, 1.0, -1.0, 2.0], [1.0, 0.5, 2.0, 1.0], [1.0, 1.0, 0.0, 0.0], \
        [2.0, 0.5, 1.0, 1.5]
    a, b = _gauss(20000, mu1, sd1, 1), _gauss(20000, mu2, sd2, 2)
    got = scores.fid(a, b)
    # Exactly the formula on the samples' own means and covariances ...
    an, bn = a.numpy(), b.numpy()
    exact = _frechet(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert got == pytest.approx(exact, rel=1e-6)
    # ... and close to the populations' value: sum (mu1 - mu2)^2 + sum (sd1 - sd2)^2 (diagonal)
    population = sum((m1 - m2) ** 2 + (s1 - s2) ** 2 for m1, s1, m2, s2 in zip(mu1, sd1, mu2, sd2))
    assert got == pytest.approx(population, rel=0.03)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_two():
    a, b = _gauss(400, [0.0] * 4, [1.0] * 4, 3), _gauss(400, [0.0] * 4, [1.0] * 4, 4)
    same, same_std = scores.kid(a, b, subsets=20, subset_size=200, seed=0)
    shifted, _ = scores.kid(a, b + 1.0, subsets=20, subset_size=200, seed=0)
    assert abs(same) < 3 * same_std + 1e-3 and shifted > 0.5
    assert scores.kid(a, b, 20, 200, seed=0) == scores.kid(a, b, 20, 200, seed=0)
    assert scores.kid(a, b, 20, 200, seed=0) != scores.kid(a, b, 20, 200, seed=1)


def test_inception_score_bounds():
    k = 5
    confident = torch.eye(k).repeat(20, 1) * 50.0  # every class equally often, each certain
    assert scores.inception_score(confident) == pytest.approx(k, rel=1e-6)
    assert scores.inception_score(torch.zeros(100, k)) == pytest.approx(1.0, abs=1e-9)


def test_cosine_of_paired_rows():
    a = torch.randn(10, 6)
    assert float(scores.cosine_per_image(a, 3 * a).mean()) == pytest.approx(1.0)
    assert float(scores.cosine_per_image(a, -a).mean()) == pytest.approx(-1.0)
    eye = torch.eye(2)
    assert float(scores.cosine_per_image(eye, eye.flip(0)).mean()) == pytest.approx(0.0)


def _region():
    r = torch.zeros(1, 1, 32, 32)
    r[..., 8:24, 8:24] = 1
    return r


def test_psnr_of_a_known_error_in_the_region_only():
    ref = torch.rand(4, 1, 32, 32) * 0.8
    out = ref + 0.1 * _region()
    out[..., :4, :4] = 0  # outside the region: must not count
    expect = 10 * math.log10(1.0 / 0.01)  # data range 1, MSE 0.01
    assert scores.psnr(out, ref, _region(), data_range=1.0) == pytest.approx(expect)
    assert scores.psnr_per_image(out, ref, _region(), data_range=1.0).tolist() == \
        pytest.approx([expect] * 4)


def test_ssim_of_identical_images_is_one_and_less_otherwise():
    x = torch.rand(3, 1, 32, 32)
    assert scores.ssim(x, x, _region(), data_range=1.0) == pytest.approx(1.0, abs=1e-6)
    assert scores.ssim(x * 2 - 1, x * 2 - 1) == pytest.approx(1.0, abs=1e-6)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert scores.ssim(noisy, x, _region(), data_range=1.0) < 0.9


def test_roc_auc_is_half_for_one_distribution_and_one_for_a_memorised_set():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, generator=g), torch.randn(2000, generator=g)
    assert scores.roc_auc(a, b) == pytest.approx(0.5, abs=0.03)
    # members reconstructed almost perfectly (score = -loss near 0), non-members not
    members, nonmembers = -torch.rand(500, generator=g) * 1e-3, -0.05 - torch.rand(500, generator=g)
    assert scores.roc_auc(members, nonmembers) == 1.0


def test_roc_auc_equals_scikit_learns_with_ties():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 5, (37,), generator=g).double()  # many ties
    b = torch.randint(1, 6, (23,), generator=g).double()
    expect = roc_auc_score([1] * 37 + [0] * 23, torch.cat([a, b]).numpy())
    assert scores.roc_auc(a, b) == pytest.approx(expect, abs=1e-12)
    assert scores.roc_auc(torch.ones(3), torch.ones(4)) == 0.5


def test_class_share_and_nn_distance():
    logits = torch.eye(4)[[0, 1, 2, 3, 3]]
    assert float(scores.in_classes(logits, [3]).double().mean()) == pytest.approx(0.4)
    assert float(scores.in_classes(logits, (0, 1)).double().mean()) == pytest.approx(0.4)
    items = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert scores.nn_distance(items, items) == 0.0
    assert scores.nn_distance(torch.zeros(1, 2), items) == pytest.approx(2.5)


def test_the_bootstrap_se_of_a_mean_is_the_textbook_one_and_shrinks_with_the_images():
    x = _gauss(400, [0.0], [2.0], 3)[:, 0]
    boot = scores.bootstrap_se(lambda v: float(v.mean()), x, draws=400)
    assert boot == pytest.approx(scores.mean_se(x), rel=0.15)  # ~2 / sqrt(400) = 0.1
    assert scores.mean_se(x) == pytest.approx(2 / 20, rel=0.1)
    assert math.isnan(scores.mean_se(x[:1]))


def test_the_bootstrap_se_of_fid_matches_its_spread_over_fresh_samples():
    """The SE from resampling one set of images against the std of FID over independently drawn
    sets: the quantity the tables' intervals need."""
    real = _gauss(2000, [0.0] * 4, [1.0] * 4, 0)
    fresh = [scores.fid(real[:300], _gauss(300, [0.5] * 4, [1.0] * 4, 10 + i))
             for i in range(40)]
    one = _gauss(300, [0.5] * 4, [1.0] * 4, 99)
    se = scores.bootstrap_se(scores.fid, real[:300], one, paired=False, draws=100, seed=1)
    assert se == pytest.approx(float(np.std(fresh, ddof=1)), rel=0.5)
    assert scores.bootstrap_se(scores.fid, real[:300], one, paired=False, draws=100, seed=1) == se
