"""Tests of course_lib.models.cyclegan: loss terms, the domain transfer of the 8x8 digits, the alternating step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import cyclegan as C


def test_cycle_and_identity_losses_are_zero_for_an_identity_pair():
    model = C.CycleGAN(nn.Identity(), nn.Identity(), C.PatchDiscriminator(width=4), C.PatchDiscriminator(width=4))
    a, b = torch.rand(3, 1, 28, 28) * 2 - 1, torch.rand(5, 1, 28, 28) * 2 - 1
    assert model.cycle_loss(a, b).item() == 0.0
    assert model.identity_loss(a, b).item() == 0.0


def test_cycle_loss_by_hand_for_a_shift_pair():
    shift = 0.25

    class Add(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, x):
            return x + self.c

    # G(a) = a + s, F(b) = b + s: F(G(a)) - a = 2s and G(F(b)) - b = 2s, so the cycle loss is 4s;
    # identity: G(b) - b = s, F(a) - a = s -> 2s
    model = C.CycleGAN(Add(shift), Add(shift), nn.Identity(), nn.Identity())
    a, b = torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    assert model.cycle_loss(a, b).item() == pytest.approx(4 * shift)
    assert model.identity_loss(a, b).item() == pytest.approx(2 * shift)


def test_lsgan_losses_by_hand():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert C.lsgan_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 0.5))
    assert C.lsgan_discriminator_loss(torch.ones(4), torch.zeros(4)).item() == 0.0
    assert C.lsgan_generator_loss(torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)


def test_shapes_and_ranges():
    gen, disc = C.ResnetGenerator(width=4, blocks=1), C.PatchDiscriminator(width=4)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    y = gen(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert disc(x).shape == (2, 1, 7, 7)
    with pytest.raises(ValueError, match="28, 28"):
        gen(torch.zeros(2, 1, 8, 8))


def test_digits8x8_to_28_keeps_the_background_and_centres_the_digit():
    x = torch.zeros(2, 1, 8, 8)
    x[:, :, 2:6, 3:5] = 1.0
    up = C.digits8x8_to_28(x)
    assert up.shape == (2, 1, 28, 28) and up.min() >= 0 and up.max() <= 1
    assert up[:, :, :4].abs().max() == 0 and up[:, :, -4:].abs().max() == 0  # 20x20 box centred: 4-pixel margins
    ys, xs = torch.nonzero(up[0, 0] > 0.5, as_tuple=True)
    assert 11 <= ys.float().mean() <= 16 and 11 <= xs.float().mean() <= 16
    sym = C.digits8x8_to_28(x * 2 - 1)
    assert sym[0, 0, 0, 0] == -1.0, "symmetric range: the padding is the -1 background"
    with pytest.raises(ValueError, match="counts"):
        C.digits8x8_to_28(x * 16)


def _snap(params):
    return [p.detach().clone() for p in params]


def test_step_updates_generators_and_discriminators_with_their_own_optimisers():
    torch.manual_seed(0)
    model = C.CycleGAN(width=4, blocks=1)
    opt_g = torch.optim.SGD(model.generator_parameters(), lr=0.05)
    opt_d = torch.optim.SGD(model.discriminator_parameters(), lr=0.0)  # discriminators must not move
    a, b = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(3, 1, 28, 28) * 2 - 1
    g0, d0 = _snap(model.generator_parameters()), _snap(model.discriminator_parameters())
    logs = C.cyclegan_train_step(model, a, b, opt_g, opt_d)
    assert all(torch.equal(p, q) for p, q in zip(model.discriminator_parameters(), d0)), (
        "the generator step must not change the discriminators")
    assert any(not torch.equal(p, q) for p, q in zip(model.generator_parameters(), g0))
    assert all(p.requires_grad for p in model.discriminator_parameters())
    assert {"cycle", "identity", "g_adv", "g_loss", "d_loss"} <= set(logs)
    # now only the discriminators move
    opt_g0 = torch.optim.SGD(model.generator_parameters(), lr=0.0)
    opt_d = torch.optim.SGD(model.discriminator_parameters(), lr=0.05)
    g0, d0 = _snap(model.generator_parameters()), _snap(model.discriminator_parameters())
    C.cyclegan_train_step(model, a, b, opt_g0, opt_d)
    assert all(torch.equal(p, q) for p, q in zip(model.generator_parameters(), g0)), (
        "the discriminator step must not change the generators (fakes detached)")
    assert any(not torch.equal(p, q) for p, q in zip(model.discriminator_parameters(), d0))
    with pytest.raises(ValueError, match="opt_g must hold only"):
        C.cyclegan_train_step(model, a, b, torch.optim.SGD(model.parameters(), lr=0.1), opt_d)


def test_train_cyclegan_runs_and_reduces_the_cycle_loss():
    from course_lib.data import InMemoryLoader

    torch.manual_seed(0)
    model = C.CycleGAN(width=4, blocks=1)
    a = torch.rand(16, 1, 28, 28) * 2 - 1
    b = torch.rand(12, 1, 28, 28) * 2 - 1
    result = C.train_cyclegan(model, InMemoryLoader(a, batch_size=4, device="cpu"),
                              InMemoryLoader(b, batch_size=4, device="cpu"), steps=21, lr=2e-3, log_every=7,
                              device="cpu", progress=False)
    cycle = result.history.values["cycle"]
    assert result.steps == 21 and len(cycle) == 3 and cycle[-1] < cycle[0]
    assert model.translate(a[:5], "AB").shape == (5, 1, 28, 28)
    with pytest.raises(ValueError, match="direction"):
        model.translate(a, "CA")


def test_digits28_to_8x8_inverts_the_upsampling_roughly():
    from course_lib import data

    x = data.digits8x8("test", value_range="unit").x[:50]
    back = C.digits28_to_8x8(C.digits8x8_to_28(x))
    assert back.shape == x.shape
    assert (back - x).abs().mean() < 0.12  # bilinear up, area down: close, not exact


def test_class_preservation_of_an_oracle_pair_is_high():
    """With G_AB = the 8x8 upsampling of a downsampled MNIST digit and G_BA = identity on upsampled 8x8 digits,
    the classifiers should read most translations correctly; with a constant generator the rate is ~chance."""
    from course_lib import data

    mnist = data.mnist("test", value_range="symmetric")
    digits = data.digits8x8("test", value_range="symmetric")
    a, y_a = mnist.x[:200], mnist.y[:200]
    b, y_b = C.digits8x8_to_28(digits.x[:200]), digits.y[:200]

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.full_like(x, -1.0) + 0 * self.p

    class Identity(Constant):
        def forward(self, x):
            return x + 0 * self.p

    oracle = C.class_preservation(C.CycleGAN(Identity(), Identity(), nn.Identity(), nn.Identity()), a, y_a, b, y_b,
                                  device="cpu")
    assert oracle.b_to_a > 0.6 and oracle.a_to_b > 0.5, oracle
    blank = C.class_preservation(C.CycleGAN(Constant(), Constant(), nn.Identity(), nn.Identity()), a, y_a, b, y_b,
                                 device="cpu")
    assert blank.a_to_b < 0.3 and blank.b_to_a < 0.3, blank
    # per-class shares: a blank image is read as one class, so exactly one class keeps all of its examples
    per_class = blank.per_class_a_to_b
    assert per_class.shape == (10,) and set(per_class.unique().tolist()) == {0.0, 1.0}
    assert (blank.read_a_to_b == blank.read_a_to_b[0]).all()
    # the overall share is the per-class shares weighted by class counts; parameter-free nets work too
    untouched = C.no_translation()
    assert torch.equal(untouched.translate(b[:3], "BA"), b[:3]) and torch.equal(untouched.translate(a[:3], "AB"), a[:3])
    plain = C.class_preservation(untouched, a, y_a, b, y_b, device="cpu")
    assert plain.b_to_a == pytest.approx(oracle.b_to_a)
    counts = torch.bincount(y_b, minlength=10).float()
    assert float((plain.per_class_b_to_a * counts).sum() / counts.sum()) == pytest.approx(plain.b_to_a)
    without_threes = C.class_preservation(untouched, a[y_a != 3], y_a[y_a != 3], b, y_b, device="cpu")
    assert torch.isnan(without_threes.per_class_a_to_b[3])


def test_random_shift_moves_each_image_by_a_uniform_offset_and_passes_gradients():
    from scipy import stats

    s, n = 2, 2500
    x = torch.full((n, 1, 9, 9), -1.0)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the middle
    assert C.random_shift(x, 0) is x
    out = C.random_shift(x, s, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    bright = (out == 1.0).nonzero()
    assert len(bright) == n, "each image keeps its one bright pixel (offsets of at most s stay inside)"
    assert ((out == -1.0).sum((1, 2, 3)) == 80).all(), "the rest is background"
    dy, dx = bright[:, 2] - 4, bright[:, 3] - 4
    assert dy.abs().max() <= s and dx.abs().max() <= s
    counts = torch.bincount((dy + s) * (2 * s + 1) + (dx + s), minlength=(2 * s + 1) ** 2)
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3, "the 25 offsets should be equally likely"
    # the border that comes into view is filled with the background value
    edge = C.random_shift(torch.ones(200, 1, 5, 5), 1, background=-1.0, generator=torch.Generator().manual_seed(1))
    assert set(edge.unique().tolist()) == {-1.0, 1.0}
    # differentiable: the gradient of the sum is 1 on the pixels that stay in view, 0 on those pushed out
    x = torch.randn(3, 1, 6, 6, requires_grad=True)
    C.random_shift(x, 1, generator=torch.Generator().manual_seed(2)).sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and (x.grad.sum((1, 2, 3)) >= 25).all()
    with pytest.raises(ValueError, match="max_shift"):
        C.random_shift(x, -1)


def test_augmented_discriminators_see_shifted_images_only_in_training():
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            seen.append(x.detach().clone())
            return x.mean((1, 2, 3)) + self.p

    model = C.CycleGAN(nn.Identity(), nn.Identity(), Recorder(), Recorder(), augment_shift=3)
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    model.train()
    model.discriminate("A", x)
    assert not torch.equal(seen[-1], x)
    model.eval()
    model.discriminate("B", x)
    assert torch.equal(seen[-1], x)
    with pytest.raises(ValueError, match="augment_shift"):
        C.CycleGAN(augment_shift=-2)
    with pytest.raises(ValueError, match="which"):
        model.discriminate("C", x)


def test_train_cyclegan_decays_the_learning_rate_linearly_to_zero():
    from course_lib.data import InMemoryLoader

    torch.manual_seed(0)
    model = C.CycleGAN(width=4, blocks=1)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    lrs = []

    class Spy(torch.optim.Adam):
        def step(self, closure=None):
            lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)

    original = torch.optim.Adam
    torch.optim.Adam = Spy
    try:
        C.train_cyclegan(model, InMemoryLoader(x, batch_size=4, device="cpu"),
                         InMemoryLoader(x, batch_size=4, device="cpu"), steps=6, lr=0.3, lr_decay_from=2,
                         device="cpu", progress=False)
    finally:
        torch.optim.Adam = original
    generator_lrs = lrs[0::2]  # each step: the generators' optimiser, then the discriminators'
    assert generator_lrs == pytest.approx([0.3, 0.3, 0.3, 0.225, 0.15, 0.075])
    assert lrs[1::2] == pytest.approx(generator_lrs)
    with pytest.raises(ValueError, match="lr_decay_from"):
        C.train_cyclegan(model, [(x,)], [(x,)], steps=6, lr_decay_from=6, device="cpu", progress=False)


def test_local_generator_shape_range_and_bad_input():
    net = C.LocalGenerator(width=8, depth=3)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    y = net(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert net.receptive_field == 7
    with pytest.raises(ValueError, match="LocalGenerator"):
        net(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="depth"):
        C.LocalGenerator(depth=1)


@pytest.mark.parametrize("depth", [2, 4])
def test_local_generator_output_depends_only_on_its_receptive_field(depth):
    """With InstanceNorm's statistics held fixed, one output pixel depends on exactly the input pixels within depth
    pixels of it, in each direction (the convolutions' receptive field)."""
    torch.manual_seed(0)
    net = C.LocalGenerator(width=8, depth=depth).eval()
    x = torch.rand(1, 1, 28, 28) * 2 - 1
    x.requires_grad_(True)
    # InstanceNorm mixes the whole image through its mean and variance (the docstring says so); freeze those
    # statistics so that what remains is the convolutions' locality
    for m in net.modules():
        if isinstance(m, nn.InstanceNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = True, torch.zeros(8), torch.ones(8)
    net(x)[0, 0, 14, 14].backward()
    touched = (x.grad[0, 0].abs() > 0).nonzero()
    assert touched[:, 0].min() == 14 - depth and touched[:, 0].max() == 14 + depth
    assert touched[:, 1].min() == 14 - depth and touched[:, 1].max() == 14 + depth


def test_the_recipes_build_and_the_domains_load():
    for name, spec in C.CYCLEGAN_RECIPES.items():
        model = C.build_cyclegan(name)
        assert model.augment_shift == spec["augment_shift"] and model.lambda_cycle == spec["lambda_cycle"]
        assert 0 < spec["lr_decay_from"] < spec["steps"]
        expected = C.LocalGenerator if spec["generator"] == "local" else C.ResnetGenerator
        assert isinstance(model.G_AB, expected) and isinstance(model.G_BA, expected)
    with pytest.raises(ValueError, match="unknown recipe"):
        C.build_cyclegan("cyclegan_mnist")
    test = C.digit_domains("test")
    assert test.a.shape[1:] == test.b.shape[1:] == (1, 28, 28)
    assert len(test.a) == len(test.y_a) and len(test.b) == len(test.y_b)
    assert test.a.min() >= -1 and test.b.max() <= 1 and test.b.min() == -1.0  # background -1 in both domains


@pytest.mark.parametrize("name", sorted(C.CYCLEGAN_RECIPES))
def test_the_shipped_checkpoints_load_into_their_recipes(name):
    from course_lib import checkpoints

    model = checkpoints.load_into(C.build_cyclegan(name), name)
    x = C.digit_domains("test").b[:4]
    assert model.translate(x, "BA").shape == x.shape


def test_domain_fid_reads_each_domain_with_its_own_classifier():
    from course_lib import metrics

    test = C.digit_domains("test")
    a, b = test.a[:300], test.b[:300]
    assert C.domain_fid(b, b, "B") == pytest.approx(0.0, abs=1e-3)
    # the same numbers as metrics.fid on the view each domain's classifier reads
    expected_b = metrics.fid(C.digits28_to_8x8((b + 1) / 2), C.digits28_to_8x8((a + 1) / 2), classifier="digits8x8")
    assert C.domain_fid(a, b, "B") == pytest.approx(expected_b, rel=1e-6)
    assert C.domain_fid(b, a, "A") == pytest.approx(metrics.fid((a + 1) / 2, (b + 1) / 2, classifier="mnist"), rel=1e-6)
    # MNIST digits are further from the 8x8 digits, to the MNIST classifier, than other MNIST digits are
    assert C.domain_fid(b, test.a[300:600], "A") > 10 * C.domain_fid(a, test.a[300:600], "A")
    with pytest.raises(ValueError, match="domain"):
        C.domain_fid(a, b, "C")


def test_translation_fid_of_no_translation_is_the_distance_of_the_inputs():
    test = C.digit_domains("test")
    a, b = test.a[:200], test.b[:200]
    ref_a, ref_b = test.a[200:500], test.b[200:]
    far = C.translation_fid(C.no_translation(), a, b, ref_a, ref_b)
    assert far.a_to_b == pytest.approx(C.domain_fid(a, ref_b, "B"))
    assert far.b_to_a == pytest.approx(C.domain_fid(b, ref_a, "A"))
    assert "A->B" in str(far)


def test_real_vs_real_fid_is_the_floor_of_translation_fid():
    train, test = C.digit_domains("train"), C.digit_domains("test")
    floor = C.real_vs_real_fid(train, test, 300, 200)
    assert floor.a_to_b == pytest.approx(C.domain_fid(train.b[:300], test.b, "B"))
    assert floor.b_to_a == pytest.approx(C.domain_fid(train.a[:200], test.a, "A"))
    # real digits of the target domain are closer to its test digits than untranslated digits of the other domain
    far = C.translation_fid(C.no_translation(), test.a[:300], test.b[:200], test.a, test.b)
    assert floor.a_to_b < far.a_to_b / 3 and floor.b_to_a < far.b_to_a / 10
