"""Tests of course_lib.metrics' sample-quality metrics.

Oracles: scipy.linalg.sqrtm and closed forms for the Frechet distance; torchmetrics' FID and KID given
the same custom feature extractor (torchmetrics is a test dependency only); brute-force loops and
scipy's k-d tree for the k-NN manifolds; the empirical spread of KID over independent
draws for its standard error. Then behavioural checks on real digits that a wrong metric would fail:
FID of a set with itself ~0, monotone in noise and blur, dropped classes raise FID and lower recall
but not precision, exact training copies are flagged, IS of real digits ~ 10.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from course_lib import data
from course_lib import metrics as M


# ------------------------------------------------------------------------------------------ helpers
def _random_spd(d: int, generator: torch.Generator, rank: int | None = None) -> torch.Tensor:
    a = torch.randn(d, rank or d, generator=generator, dtype=torch.float64)
    return a @ a.T / (rank or d)


def _scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The textbook formula with scipy's general (Schur-based) matrix square root of the product."""
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, 1, H, W) images with standard deviation sigma pixels (an independent helper)."""
    radius = 3
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


# ---------------------------------------------------------------------------- Frechet distance
@pytest.mark.parametrize("d", [4, 32])
def test_frechet_distance_matches_scipy_sqrtm(d):
    g = torch.Generator().manual_seed(d)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    s1, s2 = _random_spd(d, g), _random_spd(d, g) * 2
    ours = M.frechet_distance(mu1, s1, mu2, s2)
    ref = _scipy_frechet(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert ours == pytest.approx(ref, rel=1e-8, abs=1e-9)
    # symmetric in its two Gaussians, and accepts numpy arrays
    assert M.frechet_distance(mu2.numpy(), s2.numpy(), mu1.numpy(), s1.numpy()) == pytest.approx(ours, rel=1e-8)


def test_frechet_distance_closed_forms():
    # commuting (diagonal) covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a = torch.tensor([1.0, 4.0, 0.25, 9.0], dtype=torch.float64)
    b = torch.tensor([4.0, 1.0, 0.25, 0.0], dtype=torch.float64)  # singular: one zero variance
    mu1 = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    mu2 = mu1 + torch.tensor([1.0, 0.0, -2.0, 0.5], dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert M.frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)
    # 1-D: the W2 distance between normals, (m1 - m2)^2 + (s1 - s2)^2
    assert M.frechet_distance([0.5], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(1.5**2 + 1.0, rel=1e-12)


def test_frechet_distance_is_stable_for_rank_deficient_covariances():
    g = torch.Generator().manual_seed(3)
    d = 48
    s1, s2 = _random_spd(d, g, rank=10), _random_spd(d, g, rank=12)  # both singular: rank 10 and 12 of 48
    mu = torch.zeros(d, dtype=torch.float64)
    ours = M.frechet_distance(mu, s1, mu, s2)
    assert math.isfinite(ours) and ours >= 0
    # reference via the symmetric form, computed independently with scipy in float64
    r1 = linalg.sqrtm(s1.numpy()).real
    ref = np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * np.trace(linalg.sqrtm(r1 @ s2.numpy() @ r1).real)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-8)
    assert M.frechet_distance(mu, s1, mu, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_rejects_bad_input():
    eye = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="same length"):
        M.frechet_distance(torch.zeros(3), eye, torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError, match="symmetric"):
        M.frechet_distance(torch.zeros(3), eye + torch.triu(torch.ones(3, 3), 1), torch.zeros(3), eye)
    with pytest.raises(ValueError, match="positive semi-definite"):
        M.frechet_distance(torch.zeros(3), -eye, torch.zeros(3), eye)
    with pytest.raises(ValueError, match="NaN"):
        M.frechet_distance(torch.tensor([0.0, float("nan"), 0.0]), eye, torch.zeros(3), eye)


def test_gaussian_statistics_needs_more_samples_than_dimensions():
    f = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"more samples than\s+dimensions \(N > 64"):
        M.gaussian_statistics(f)
    mu, sigma = M.gaussian_statistics(torch.randn(65, 64, generator=torch.Generator().manual_seed(0)))
    assert mu.shape == (64,) and sigma.shape == (64, 64) and sigma.dtype == torch.float64


def test_fid_rejects_nan_and_mismatched_features():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    bad = fake.clone()
    bad[5, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf features in 1 of 200"):
        M.fid(real, bad)
    with pytest.raises(ValueError, match="dimension 8 .* 6"):
        M.fid(real, fake[:, :6])
    with pytest.raises(ValueError, match=r"\(N, D\) or a batch of images"):
        M.fid(real, fake[:, 0])
    assert M.fid(real, real) == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------------------------------- KID
def test_kid_matches_a_direct_double_loop():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(30, 5, generator=g, dtype=torch.float64), torch.randn(25, 5, generator=g, dtype=torch.float64) + 0.3
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    res = M.mmd2_unbiased(x, y, chunk_size=7)  # several row blocks
    assert res.value == pytest.approx(float(kxx + kyy - 2 * kxy), rel=1e-10)
    # the jackknife closed form equals explicit leave-one-out recomputation
    loo_x = [M.mmd2_unbiased(torch.cat([x[:i], x[i + 1:]]), y).value for i in range(m)]
    loo_y = [M.mmd2_unbiased(x, torch.cat([y[:j], y[j + 1:]])).value for j in range(n)]
    var = (m - 1) / m * np.sum((np.array(loo_x) - np.mean(loo_x)) ** 2) + (n - 1) / n * np.sum(
        (np.array(loo_y) - np.mean(loo_y)) ** 2
    )
    assert res.std_error == pytest.approx(math.sqrt(var), rel=1e-8)


def test_kid_standard_error_matches_spread_over_independent_draws():
    g = torch.Generator().manual_seed(2)
    values, errors = [], []
    for _ in range(150):
        x = torch.randn(120, 6, generator=g)
        y = torch.randn(120, 6, generator=g) * 1.2 + 0.2
        r = M.kid(x, y)
        values.append(r.value)
        errors.append(r.std_error)
    empirical = float(np.std(values, ddof=1))
    assert np.mean(errors) == pytest.approx(empirical, rel=0.25)
    assert np.mean(values) > 5 * empirical / math.sqrt(len(values))  # different distributions: KID > 0


def test_kid_is_unbiased_between_samples_of_one_distribution():
    g = torch.Generator().manual_seed(4)
    values = [M.kid(torch.randn(60, 4, generator=g), torch.randn(60, 4, generator=g)).value for _ in range(200)]
    assert abs(np.mean(values)) < 3 * np.std(values) / math.sqrt(len(values))
    assert min(values) < 0  # an unbiased estimate of 0 must sometimes be negative


# ------------------------------------------------------------------------- precision / recall
def test_knn_radii_match_a_kd_tree():
    from scipy.spatial import cKDTree

    x = torch.randn(300, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    dist, _ = cKDTree(x.numpy()).query(x.numpy(), k=4)  # column 0: the point itself
    np.testing.assert_allclose(M.knn_radii(x, k=3).numpy(), dist[:, 3], rtol=1e-9)


def test_precision_recall_against_brute_force_and_extremes():
    g = torch.Generator().manual_seed(6)
    real, fake = torch.randn(80, 3, generator=g, dtype=torch.float64), torch.randn(70, 3, generator=g, dtype=torch.float64) * 0.5 + 0.7
    k = 3

    def radii(a):
        d = torch.cdist(a, a)
        return torch.sort(d, dim=1).values[:, k]  # column 0 is the point itself

    rr, rf = radii(real), radii(fake)
    precision = np.mean([any(torch.dist(f, r) <= rr[i] for i, r in enumerate(real)) for f in fake])
    recall = np.mean([any(torch.dist(r, f) <= rf[j] for j, f in enumerate(fake)) for r in real])
    res = M.precision_recall(real, fake, k=k)
    assert (res.precision, res.recall) == pytest.approx((precision, recall))
    assert M.precision_recall(real, real).precision == 1.0 == M.precision_recall(real, real).recall
    far = M.precision_recall(real, real + 100.0)
    assert far.precision == 0.0 and far.recall == 0.0


# ---------------------------------------------------------------------- IS and class histogram
def test_inception_score_closed_forms():
    k = 10
    confident = torch.full((1000, k), -30.0)
    confident[torch.arange(1000), torch.arange(1000) % k] = 30.0  # one-hot, all classes equally often
    assert M.inception_score_from_logits(confident).mean == pytest.approx(k, rel=1e-6)
    assert M.inception_score_from_logits(torch.zeros(100, k)).mean == pytest.approx(1.0)  # uniform p(y|x)
    one_class = torch.zeros(100, k)
    one_class[:, 3] = 30.0
    assert M.inception_score_from_logits(one_class).mean == pytest.approx(1.0, abs=1e-6)
    split = M.inception_score_from_logits(confident, splits=10)
    assert split.mean == pytest.approx(k, rel=1e-6) and split.std == pytest.approx(0.0, abs=1e-6)
    # against the definition exp(H[p(y)] - E H[p(y|x)]) for random logits, computed with numpy
    logits = torch.randn(500, k, generator=torch.Generator().manual_seed(7)) * 3
    p = torch.softmax(logits.double(), 1).numpy()
    h = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
    assert M.inception_score_from_logits(logits).mean == pytest.approx(np.exp(h(p.mean(0)) - h(p).mean()), rel=1e-9)


def test_class_histogram_from_logits():
    logits = torch.full((100, 10), -10.0)
    labels = torch.cat([torch.zeros(50, dtype=torch.long), torch.ones(49, dtype=torch.long), torch.tensor([2])])
    logits[torch.arange(100), labels] = 10.0
    h = M.class_histogram_from_logits(logits)
    assert h.counts.tolist() == [50, 49, 1] + [0] * 7
    assert h.num_covered == 2  # one stray sample (1% < 2.5%) does not cover class 2
    assert h.effective_classes == pytest.approx(math.exp(-(0.5 * math.log(0.5) + 0.49 * math.log(0.49) + 0.01 * math.log(0.01))))
    assert h.total_variation == pytest.approx(0.5 * (0.4 + 0.39 + 0.09 + 7 * 0.1))
    assert h.low_confidence_share == 0.0
    assert M.class_histogram_from_logits(torch.zeros(10, 10)).low_confidence_share == 1.0


# ------------------------------------------------------------------------------------- floors
def test_floor_interpolation_ratio_and_staleness(tmp_path, monkeypatch):
    table = {
        "classifiers": {
            "mnist": {
                "checkpoint": "classifier_mnist",
                "checkpoint_sha256": "abc",
                "floors": {
                    "fid": {"500": {"mean": 2.0, "std": 0.2, "repeats": 10}, "1000": {"mean": 1.0, "std": 0.1, "repeats": 10}},
                    "kid": {"500": {"mean": 0.0, "std": 0.004, "repeats": 10}, "1000": {"mean": 0.0, "std": 0.002, "repeats": 10}},
                },
            }
        }
    }
    path = tmp_path / "floors.json"
    path.write_text(json.dumps(table))
    from course_lib import checkpoints

    monkeypatch.setattr(checkpoints, "manifest", lambda *a, **k: {"classifier_mnist": {"sha256": "abc"}})
    assert M.floor("fid", 500, path=path).mean == 2.0
    mid = M.floor("fid", 2 / (1 / 500 + 1 / 1000), path=path)  # halfway in 1/N
    assert mid.interpolated and mid.mean == pytest.approx(1.5)
    assert M.ratio_to_floor(6.0, "fid", 1000, path=path) == pytest.approx(6.0)
    assert M.floor("kid", 500, path=path).level == pytest.approx(0.004)  # KID: sqrt(mean^2 + std^2)
    assert M.ratio_to_floor(M.KIDResult(0.02, 0.001, 500, 500), "kid", 500, path=path) == pytest.approx(5.0)
    assert M.effective_n(500, 1000) == pytest.approx(666.666, rel=1e-4)
    with pytest.raises(ValueError, match=r"recorded for N in \[500, 1000\]"):
        M.floor("fid", 3000, path=path)
    with pytest.raises(ValueError, match="defined for"):
        M.ratio_to_floor(0.9, "precision", 500, path=path)
    monkeypatch.setattr(checkpoints, "manifest", lambda *a, **k: {"classifier_mnist": {"sha256": "new"}})
    with pytest.raises(ValueError, match="different classifier checkpoint.*metrics_floor.py"):
        M.floor("fid", 500, path=path)
    with pytest.raises(FileNotFoundError, match="metrics_floor.py"):
        M.floor("fid", 500, path=tmp_path / "missing.json")


def test_shipped_floors_are_recorded_for_the_course_sample_sizes():
    for n in (500, 1000, 2000):
        f = M.floor("fid", n, classifier="mnist")
        assert f.mean > 0 and f.std > 0 and f.repeats >= 5
        assert abs(M.floor("kid", n).mean) < 3 * M.floor("kid", n).std  # KID is unbiased: mean ~0
    assert M.floor("fid", 500).mean > M.floor("fid", 1000).mean > M.floor("fid", 2000).mean  # bias shrinks with N


# ---------------------------------------------------------------------- on real digits (MNIST)
@pytest.fixture(scope="module")
def mnist_sets():
    train, test = data.mnist("train", source="embedded"), data.mnist("test", source="embedded")
    clf = M.digit_classifier("mnist", device="cpu")
    return {"train": train, "test": test, "clf": clf}


@pytest.fixture(scope="module")
def real_features(mnist_sets):
    clf = mnist_sets["clf"]
    test_f, test_l = M.extract_features_and_logits(mnist_sets["test"].x, clf, device="cpu")
    train_f = M.extract_features(mnist_sets["train"].x, clf, device="cpu")
    return {"test": test_f, "test_logits": test_l, "train": train_f}


class _Features(torch.nn.Module):
    """The course classifier's feature head as torchmetrics' custom feature extractor."""

    def __init__(self, clf):
        super().__init__()
        self.clf = clf
        self.num_features = clf.feature_dim

    def forward(self, x):
        return self.clf.features(x)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_fid_and_kid_match_torchmetrics_with_the_same_feature_extractor(mnist_sets):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    clf = mnist_sets["clf"]
    real = mnist_sets["test"].x[:600]
    fake = (mnist_sets["train"].x[:600] + 0.15 * torch.randn(600, 1, 28, 28, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    tm_fid = FrechetInceptionDistance(feature=_Features(clf), normalize=True)
    tm_kid = KernelInceptionDistance(feature=_Features(clf), normalize=True, subsets=1, subset_size=600)
    for metric in (tm_fid, tm_kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    ours_fid = M.fid(real, fake, classifier=clf, device="cpu")
    assert ours_fid == pytest.approx(float(tm_fid.compute()), rel=1e-4)
    assert ours_fid > 1.0  # noisy digits: clearly not ~0, so the comparison is not vacuous
    ours_kid = M.kid(real, fake, classifier=clf, device="cpu")
    assert ours_kid.value == pytest.approx(float(tm_kid.compute()[0]), rel=1e-4)


def test_fid_of_a_set_with_itself_is_zero(real_features):
    assert M.fid(real_features["test"], real_features["test"]) == pytest.approx(0.0, abs=1e-8)


def test_fid_grows_monotonically_with_noise_and_blur(mnist_sets, real_features):
    clf, real = mnist_sets["clf"], real_features["test"]
    base = mnist_sets["train"].x[:1000]
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(base.shape, generator=g)
    fid_noise = [M.fid(real, (base + s * noise).clamp(0, 1), classifier=clf, device="cpu") for s in (0.0, 0.1, 0.2, 0.35, 0.5)]
    fid_blur = [M.fid(real, _blur(base, s), classifier=clf, device="cpu") for s in (0.5, 0.8, 1.1, 1.5)]
    fid_blur = [fid_noise[0]] + fid_blur
    assert all(a < b for a, b in zip(fid_noise, fid_noise[1:])), fid_noise
    assert all(a < b for a, b in zip(fid_blur, fid_blur[1:])), fid_blur
    kid_noise = [M.kid(real, (base + s * noise).clamp(0, 1), classifier=clf, device="cpu").value for s in (0.0, 0.2, 0.5)]
    assert kid_noise[0] < kid_noise[1] < kid_noise[2], kid_noise


def test_dropping_classes_raises_fid_lowers_recall_but_not_precision(mnist_sets, real_features):
    train = mnist_sets["train"]
    real = real_features["test"]
    g = torch.Generator().manual_seed(2)
    all_classes = real_features["train"][torch.randperm(4000, generator=g)[:1000]]
    keep = torch.nonzero(train.y < 5).squeeze(1)
    half_classes = real_features["train"][keep[torch.randperm(len(keep), generator=g)[:1000]]]
    pr_all, pr_half = M.precision_recall(real, all_classes), M.precision_recall(real, half_classes)
    assert M.fid(real, half_classes) > 5 * M.fid(real, all_classes)
    assert pr_half.recall < pr_all.recall - 0.3
    assert pr_half.precision >= pr_all.precision - 0.03
    # ... and the class histogram sees the missing modes
    h_all = M.class_histogram(train.x[:1000], classifier=mnist_sets["clf"], device="cpu")
    h_half = M.class_histogram(train.x[keep[:1000]], classifier=mnist_sets["clf"], device="cpu")
    assert h_all.num_covered == 10 and h_half.num_covered == 5
    assert h_half.effective_classes < 5.5 < 9.5 < h_all.effective_classes


def test_memorisation_flags_exact_training_copies(mnist_sets):
    x = mnist_sets["train"].x
    seen, unseen = x[:3000], x[3000:3900]  # the "model" was trained on `seen`; `unseen` are new real digits
    heldout = mnist_sets["test"].x
    fresh = M.memorisation(unseen, seen, heldout)
    copies = seen[torch.randperm(3000, generator=torch.Generator().manual_seed(3))[:100]]
    mixed = M.memorisation(torch.cat([unseen, copies]), seen, heldout)
    assert fresh.share_near_copies < 0.04  # new digits: about the expected 1%
    assert mixed.near_copy[900:].all()  # every exact copy flagged
    assert float(mixed.d_train[900:].max()) < 1e-6 and float(mixed.ratio[900:].max()) < 1e-5
    assert mixed.share_near_copies > fresh.share_near_copies + 0.08
    assert mixed.expected_share == 0.01
    # in feature space too
    feat = M.memorisation(torch.cat([unseen[:300], copies]), seen, heldout, space="features", device="cpu")
    assert feat.near_copy[300:].all() and feat.near_copy[:300].double().mean() < 0.05
    with pytest.raises(ValueError, match="must be real images the model was NOT trained on"):
        M.memorisation(unseen, seen, seen[:500])


def test_inception_score_of_real_digits_is_close_to_ten(real_features):
    score = M.inception_score_from_logits(real_features["test_logits"])
    assert 9.0 < score.mean <= 10.0


def test_evaluate_reports_everything_with_ratios(mnist_sets):
    real, train = mnist_sets["test"].x, mnist_sets["train"].x
    fake = (train[1000:2000] + 0.3 * torch.randn(1000, 1, 28, 28, generator=torch.Generator().manual_seed(5))).clamp(0, 1)
    report = M.evaluate(real, fake, train=train[:1000], device="cpu")
    assert report.classifier == "mnist" and report.n_fake == 1000
    assert report.fid_ratio == pytest.approx(report.fid / M.floor("fid", 1000).mean)
    assert report.fid_ratio > 2 and report.kid_ratio > 2  # noisy digits are clearly worse than real ones
    assert set(report.as_dict()) >= {"fid", "fid_ratio", "kid", "kid_ratio", "precision", "recall", "near_copy_share"}
    assert "FID" in str(report)


# ------------------------------------------------------------------------------------ bad input
def test_bad_images_get_errors_that_name_the_fix(mnist_sets):
    real = mnist_sets["test"].x[:200]
    clf = mnist_sets["clf"]
    with pytest.raises(ValueError, match=r"fake has values in \[-1, 1\].*\(fake \+ 1\) / 2"):
        M.fid(real, real * 2 - 1, classifier=clf, device="cpu")
    with pytest.raises(ValueError, match="divide by 255"):
        M.kid(real * 255, real, classifier=clf, device="cpu")
    with pytest.raises(ValueError, match="clamp"):
        M.precision_recall(real, real * 1.05 - 0.02, classifier=clf, device="cpu")
    small = data.digits8x8("test").x
    with pytest.raises(ValueError, match="same size"):
        M.fid(real, small, device="cpu")
    nan = real.clone()
    nan[3, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        M.fid(real, nan, device="cpu")
    with pytest.raises(ValueError, match="more samples than"):
        M.fid(real[:50], real[50:100], classifier=clf, device="cpu")
    with pytest.raises(ValueError, match="unsqueeze"):
        M.fid(real[:, 0], real, device="cpu")
    with pytest.raises(ValueError, match="no shipped classifier"):
        M.extract_features(torch.rand(10, 3, 32, 32))
