"""RealNVP exactness in float64: every bijector and whole flows invert to 1e-9 and their log-dets
equal slogdet of the numerical (forward-mode) Jacobian; identity at init; base densities against
scipy; the bits/dim bookkeeping."""

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special
from scipy import stats

from rvq_jax.configs import realnvp as realnvp_config
from rvq_jax.models import realnvp


@pytest.fixture(autouse=True)
def float64():
  with jax.enable_x64(True):
    yield


def _prior_config(**overrides):
  """A small flow: the digit in the class base only and no label dropout (the tests that want the
  digit in the couplings or guidance say so), whatever the shipped recipe's defaults."""
  p = realnvp_config.get_config().prior
  p.hidden, p.res_blocks = 6, 1
  p.label_conditioning, p.label_dropout = False, 0.0
  p.update(overrides)
  return p


def _perturbed(params, seed, scale=0.05):
  """float64 params moved off their (identity) initialisation, so every layer does something."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [
      leaf.astype(jnp.float64) + scale * jax.random.normal(k, leaf.shape, jnp.float64)
      for leaf, k in zip(leaves, keys)])


def _check_bijector(forward_and_log_det, inverse, x):
  """inverse(forward(x)) == x to 1e-9; log-det == slogdet(jacfwd) to 1e-8 x dims; and the
  inverse's log-det is its negative."""
  y, log_det = forward_and_log_det(x)
  np.testing.assert_allclose(inverse(y), x, rtol=0, atol=1e-9)
  dims = x[0].size
  for i in range(x.shape[0]):
    jacobian = jax.jacfwd(lambda v: forward_and_log_det(v.reshape((1,) + x.shape[1:]))[0]
                          .reshape(-1))(x[i].reshape(-1))
    sign, expected = jnp.linalg.slogdet(jacobian)
    assert sign != 0
    np.testing.assert_allclose(log_det[i], expected, rtol=0, atol=1e-8 * dims)
  return y


def _x(shape, batch=2, seed=0):
  return jax.random.normal(jax.random.key(seed), (batch,) + shape, jnp.float64)


@pytest.mark.parametrize("shape", [(4, 4, 2), (8, 8, 4)])
def test_squeeze_is_a_volume_preserving_permutation(shape):
  x = _x(shape)
  bij = realnvp.Squeeze()
  y = _check_bijector(bij.forward_and_log_det, bij.inverse, x)
  assert y.shape == (2, shape[0] // 2, shape[1] // 2, 4 * shape[2])
  np.testing.assert_array_equal(np.sort(np.asarray(y).ravel()), np.sort(np.asarray(x).ravel()))
  # Each 2x2 spatial block becomes the channels of one position.
  np.testing.assert_array_equal(y[0, 0, 0], np.asarray(x[0, :2, :2]).reshape(-1))


def test_factor_out_standardization_and_actnorm():
  shape = (4, 4, 2)
  x = _x(shape)
  mean, std = jnp.array([0.3, -1.0]), jnp.array([2.0, 0.5])
  standard = realnvp.standardization(mean, std)
  _check_bijector(standard.forward_and_log_det, standard.inverse, x)
  np.testing.assert_allclose(standard.forward(x), (x - mean) / std, atol=1e-12)

  inner = realnvp.standardization(jnp.array([1.0]), jnp.array([3.0]))
  factor = realnvp.FactorOut(inner)
  y = _check_bijector(factor.forward_and_log_det, factor.inverse, x)
  np.testing.assert_array_equal(y[..., :1], x[..., :1])     # factored-out half untouched

  actnorm = realnvp.ActNorm(lambda _: (jnp.array([0.5, -0.2]), jnp.array([0.3, -0.7])))
  _check_bijector(actnorm.forward_and_log_det, actnorm.inverse, x)


class _OneStep(nn.Module):
  """One FlowStep (actnorm, 1x1 conv, coupling) as a module, for per-bijector checks."""
  mask: np.ndarray
  log_scale_form: str

  def setup(self):
    self.step = realnvp.FlowStep(self.mask, 6, 1, 3, self.log_scale_form, actnorm=True,
                                 invertible_1x1=True)

  def bijectors(self):
    return self.step()

  def __call__(self, x):
    for b in self.bijectors():
      x = b.forward(x)
    return x


@pytest.mark.parametrize("mask_kind", ["checkerboard", "channel"])
@pytest.mark.parametrize("log_scale_form", ["tanh", "sigmoid"])
def test_each_flow_step_bijector_is_exact(mask_kind, log_scale_form):
  shape = (4, 4, 2)
  mask = (realnvp.checkerboard_mask(shape, 1) if mask_kind == "checkerboard"
          else realnvp.channel_mask(shape, 0))
  module = _OneStep(mask, log_scale_form)
  x = _x(shape)
  params = _perturbed(module.init(jax.random.key(1), x), seed=2)
  for i, name in enumerate(("actnorm", "1x1 conv", "coupling")):
    def fwd(v, i=i):
      return module.apply(params, method=lambda m: m.bijectors()[i].forward_and_log_det(v))

    def inv(v, i=i):
      return module.apply(params, method=lambda m: m.bijectors()[i].inverse(v))
    y = _check_bijector(fwd, inv, x)
    if name == "coupling":   # masked entries pass through unchanged
      np.testing.assert_array_equal(np.asarray(y)[:, mask], np.asarray(x)[:, mask])


FLOWS = [
    dict(shape=(4, 4, 2), num_scales=1),
    dict(shape=(4, 4, 2), num_scales=2, invertible_1x1=True),
    dict(shape=(4, 4, 4), num_scales=2, log_scale="sigmoid"),
    dict(shape=(8, 8, 2), num_scales=3, actnorm=False),
]


@pytest.mark.parametrize("case", FLOWS, ids=lambda c: f"{c['shape']}-{c['num_scales']}scales")
def test_whole_flow_is_exact(case):
  case = dict(case)
  shape = case.pop("shape")
  model = realnvp.make_prior(_prior_config(**case), shape)
  x = _x(shape)
  mean, std = jnp.full(shape[-1], 0.1), jnp.full(shape[-1], 1.5)
  params = model.init(jax.random.key(0), x, jnp.zeros(2, jnp.int32), mean, std,
                      method=realnvp.FlowPrior.log_prob)
  params = _perturbed(params, seed=3)
  _check_bijector(
      lambda v: model.apply(params, v, mean, std, method=realnvp.FlowPrior.forward_and_log_det),
      lambda v: model.apply(params, v, mean, std, method=realnvp.FlowPrior.inverse), x)


def test_flow_is_identity_at_init_and_bits_per_dim_is_the_gaussian_entropy():
  shape = (8, 8, 4)
  model = realnvp.make_prior(_prior_config(actnorm=False, base="gaussian"), shape)
  x = _x(shape, batch=400, seed=5)
  labels = jnp.zeros(400, jnp.int32)
  params = model.init(jax.random.key(0), x, labels, method=realnvp.FlowPrior.log_prob)
  z, log_det = model.apply(params, x, method=realnvp.FlowPrior.forward_and_log_det)
  np.testing.assert_array_equal(z, x)
  np.testing.assert_array_equal(log_det, 0.0)
  bpd = realnvp.bits_per_dim(model.apply(params, x, labels, method=realnvp.FlowPrior.log_prob),
                             int(np.prod(shape)))
  entropy_bits = 0.5 * np.log2(2 * np.pi * np.e)       # differential entropy of N(0, 1) in bits
  # Monte Carlo: std of the mean over 400 x 256 dims is about 0.0032 bits.
  assert abs(float(bpd.mean()) - entropy_bits) < 0.015
  np.testing.assert_allclose(bpd, -stats.norm.logpdf(np.asarray(x)).sum((1, 2, 3)) /
                             (256 * np.log(2)), rtol=1e-12)


def test_actnorm_initialises_from_data_and_guards_constant_channels():
  shape = (4, 4, 3)
  x = np.asarray(_x(shape, batch=16)) * np.array([3.0, 0.5, 0.0]) + np.array([1.0, -2.0, 7.0])
  model = realnvp.make_prior(_prior_config(num_scales=1, base="gaussian"), shape)
  params = model.init(jax.random.key(0), jnp.asarray(x), jnp.zeros(16, jnp.int32),
                      method=realnvp.FlowPrior.log_prob)
  first = model.apply(params, method=lambda m: m.scales[0][0][0]()[0].forward(jnp.asarray(x)))
  np.testing.assert_allclose(np.asarray(first)[..., :2].mean((0, 1, 2)), 0.0, atol=1e-12)
  np.testing.assert_allclose(np.asarray(first)[..., :2].std((0, 1, 2)), 1.0, atol=1e-12)
  np.testing.assert_allclose(np.asarray(first)[..., 2], 0.0, atol=1e-12)   # constant: shifted only
  assert np.all(np.isfinite(jax.tree.leaves(params)[0]))


def test_bases_against_scipy_and_temperature():
  shape = (4, 4, 2)
  x = _x(shape, batch=3)
  labels = jnp.array([0, 3, 9])
  for base in ("mixture", "class_conditional"):
    model = realnvp.make_prior(_prior_config(base=base, actnorm=False), shape)
    params = _perturbed(model.init(jax.random.key(0), x, labels,
                                   method=realnvp.FlowPrior.log_prob), seed=7, scale=0.5)
    got = model.apply(params, method=lambda m: m.base_distribution(labels).log_prob(x))
    p = params["params"]
    xs = np.asarray(x)
    if base == "mixture":
      log_w = np.asarray(p["mix_logits"]) - special.logsumexp(p["mix_logits"], -1, keepdims=True)
      comp = stats.norm.logpdf(xs[..., None], p["mix_loc"], np.exp(p["mix_log_scale"]))
      expected = special.logsumexp(log_w + comp, -1).sum((1, 2, 3))
    else:
      loc, log_scale = np.asarray(p["class_loc"])[labels], np.asarray(p["class_log_scale"])[labels]
      expected = stats.norm.logpdf(xs, loc, np.exp(log_scale)).sum((1, 2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-10)

  model = realnvp.make_prior(_prior_config(base="gaussian", actnorm=False), shape)
  params = _perturbed(model.init(jax.random.key(0), x, labels, method=realnvp.FlowPrior.log_prob),
                      seed=8)
  many = jnp.zeros(2000, jnp.int32)
  for temperature in (1.0, 0.7):
    samples = model.apply(params, jax.random.key(1), many, None, None, temperature,
                          method=realnvp.FlowPrior.sample)
    z, _ = model.apply(params, samples, method=realnvp.FlowPrior.forward_and_log_det)
    assert abs(float(jnp.std(z)) - temperature) < 0.01 * temperature


def test_distrax_coupling_gets_the_mask_as_a_channel():
  """Distrax feeds the conditioner where(mask, x, 0); ours must also see the mask itself."""
  shape = (4, 4, 1)
  mask = realnvp.checkerboard_mask(shape, 0)
  coupling = realnvp.AffineCoupling(mask, 4, 0, 3, "tanh")

  class Spy(nn.Module):
    @nn.compact
    def __call__(self, x):
      bij = coupling.clone(parent=self)()
      assert isinstance(bij, distrax.MaskedCoupling)
      return bij.forward(x)

  spy = Spy()
  x = _x(shape)
  params = spy.init(jax.random.key(0), x)
  captured = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, realnvp.ResNetConditioner) and context.method_name == "__call__":
      captured.append(args[0])
    return next_fun(*args, **kwargs)
  with nn.intercept_methods(record):
    spy.apply(params, x)
  net_input = np.asarray(captured[0])
  assert net_input.shape == (2, 4, 4, 2)
  np.testing.assert_array_equal(net_input[0, :, :, 1], mask[:, :, 0].astype(float))
  np.testing.assert_array_equal(net_input[..., 0], np.where(mask[..., 0], x[..., 0], 0.0))


def test_label_conditioned_flow_is_exact_per_digit_and_its_density_uses_the_digit():
  """With `label_conditioning` every conditioner sees the digit: for each digit the flow is an
  exact bijection (inverse, log-det against the numerical Jacobian), different digits map x
  differently, and log_prob(x, digit) is the change of variables through that digit's flow."""
  shape = (4, 4, 2)
  model = realnvp.make_prior(_prior_config(num_scales=2, base="gaussian",
                                           label_conditioning=True), shape)
  x = _x(shape, batch=1, seed=4)
  params = _perturbed(model.init(jax.random.key(0), x, jnp.array([0]),
                                 method=realnvp.FlowPrior.log_prob), seed=5, scale=0.2)
  latents = {}
  for digit in (3, 7):
    labels = jnp.array([digit])
    latents[digit] = _check_bijector(
        lambda v, labels=labels: model.apply(params, v, labels=labels,
                                             method=realnvp.FlowPrior.forward_and_log_det),
        lambda v, labels=labels: model.apply(params, v, labels=labels,
                                             method=realnvp.FlowPrior.inverse), x)
    z, log_det = model.apply(params, x, labels=labels, method=realnvp.FlowPrior.forward_and_log_det)
    np.testing.assert_allclose(
        model.apply(params, x, labels, method=realnvp.FlowPrior.log_prob),
        stats.norm.logpdf(np.asarray(z)).sum((1, 2, 3)) + np.asarray(log_det), rtol=1e-10)
  assert float(jnp.abs(latents[3] - latents[7]).max()) > 1e-2
  with pytest.raises(ValueError, match="needs the labels"):
    model.apply(params, x, method=realnvp.FlowPrior.forward_and_log_det)


def test_guided_couplings_mix_the_conditional_and_unconditional_outputs_and_stay_exact():
  """Classifier-free guidance w: each coupling's shift and log-scale are (1 + w) f(x, digit) -
  w f(x, no digit), computed here from the unguided coupling with the same parameters; the
  guided coupling is still an exact bijection."""
  shape, w = (4, 4, 2), 2.5
  mask = realnvp.checkerboard_mask(shape, 0)
  plain = realnvp.AffineCoupling(mask, 6, 1, 3, "tanh", null_class=True)
  guided = realnvp.AffineCoupling(mask, 6, 1, 3, "tanh", null_class=True, guidance=w)
  x = _x(shape, batch=3, seed=7)
  masked = jnp.where(mask, x, 0.0)
  labels = jnp.array([1, 4, 9])
  params = _perturbed(plain.init(jax.random.key(0), masked, labels,
                                 method=realnvp.AffineCoupling._conditioner), seed=8, scale=0.3)
  cond = plain.apply(params, masked, labels, method=realnvp.AffineCoupling._conditioner)
  uncond = plain.apply(params, masked, jnp.full(3, realnvp.NULL_LABEL),
                       method=realnvp.AffineCoupling._conditioner)
  got = guided.apply(params, masked, labels, method=realnvp.AffineCoupling._conditioner)
  for g, c, u in zip(got, cond, uncond):
    np.testing.assert_allclose(g, (1 + w) * c - w * u, rtol=1e-12, atol=1e-12)
  assert float(jnp.abs(got[0] - cond[0]).max()) > 1e-3       # guidance changes something

  def round_trip(module, x, labels):
    bijector = module(labels)
    return bijector.inverse(bijector.forward(x))
  np.testing.assert_allclose(guided.apply(params, x, labels, method=round_trip), x, atol=1e-12)


def test_guided_class_base_extrapolates_away_from_the_unconditional_mean():
  shape, w = (4, 4, 2), 1.5
  config = _prior_config(num_scales=1, final_couplings=1, label_dropout=0.2)
  model = realnvp.make_prior(config, shape)
  x, labels = _x(shape, batch=2), jnp.array([3, 6])
  params = _perturbed(model.init(jax.random.key(0), x, labels, method=realnvp.FlowPrior.log_prob),
                      seed=1, scale=0.5)
  loc = params["params"]["class_loc"]
  assert loc.shape == (realnvp.NUM_CLASSES + 1,) + shape       # a "no digit" row
  guided = realnvp.make_prior(config, shape, guidance=w)
  base = guided.apply(params, labels, method=realnvp.FlowPrior.base_distribution)
  np.testing.assert_allclose(base.distribution.loc,
                             loc[labels] + w * (loc[labels] - loc[realnvp.NULL_LABEL]), rtol=1e-12)


def test_guidance_leaves_the_unconditional_density_as_it_is():
  """For "no digit" a guided flow is the unguided one ((1 + w) f(x, none) - w f(x, none)): the
  evaluation draws its unconditional samples with whichever sampler it has compiled."""
  shape, w = (4, 4, 2), 2.0
  config = _prior_config(num_scales=1, final_couplings=2, label_conditioning=True,
                         label_dropout=0.2)
  model, guided = realnvp.make_prior(config, shape), realnvp.make_prior(config, shape, guidance=w)
  null = jnp.full(3, realnvp.NULL_LABEL, jnp.int32)
  params = _perturbed(model.init(jax.random.key(0), _x(shape, batch=3), null,
                                 method=realnvp.FlowPrior.log_prob), seed=2, scale=0.3)
  mean, std = jnp.full(shape[-1], 0.1), jnp.full(shape[-1], 1.5)
  draw = [m.apply(params, jax.random.key(5), null, mean, std, 0.7, method=realnvp.FlowPrior.sample)
          for m in (model, guided)]
  np.testing.assert_allclose(draw[1], draw[0], atol=1e-9)
