"""An RVQ-VAE for 8x8 digit images (scikit-learn's bundled set: no download) with dropout and
BatchNorm, trained by the project's generic step, `steps.make_train_step(forward_fn, ...)`.

The model is this file's: its forward pass draws dropout from the step's key and returns
BatchNorm's updated running statistics, which the step stores; the step does the rest (the EMA
codebooks, dead-code restarts, optax). Run: python examples/digits_vqvae.py
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import datasets

from rvq_jax.models import rvq
from rvq_jax.train import steps


class DigitsVQVAE(nn.Module):
  """[B, 8, 8, 1] images -> latents [B, 4, 4, D] -> [B, 8, 8, 1]."""
  latent_dim: int = 16
  dropout: float = 0.1

  def setup(self):
    self.enc_conv, self.enc_out = nn.Conv(32, (3, 3), strides=2), nn.Conv(self.latent_dim, (1, 1))
    self.enc_bn, self.dec_bn = nn.BatchNorm(), nn.BatchNorm()
    self.drop = nn.Dropout(self.dropout)
    self.dec_conv, self.dec_out = nn.ConvTranspose(32, (3, 3), strides=(2, 2)), nn.Conv(1, (3, 3))

  def __call__(self, x, train: bool = False):   # for init: both halves
    return self.decode(self.encode(x, train), train)

  def encode(self, x, train: bool = False):
    h = nn.relu(self.enc_bn(self.enc_conv(x), use_running_average=not train))
    return self.enc_out(self.drop(h, deterministic=not train))

  def decode(self, z, train: bool = False):
    h = nn.relu(self.dec_bn(self.dec_conv(z), use_running_average=not train))
    return self.dec_out(h)


def make_forward(model, beta: float = 0.25):
  """`forward_fn(variables, batch, rng, quantize) -> (loss, metrics, aux)` in training mode."""
  def forward(variables, batch, rng, quantize):
    kw = dict(mutable=["batch_stats"], rngs={"dropout": rng})
    latents, updated = model.apply(variables, batch, True, method="encode", **kw)
    quantized, quant = quantize(latents)
    # The decoder's call starts from the encoder's updated statistics, so it returns both.
    decoded, updated = model.apply({**variables, **updated}, quantized, True, method="decode",
                                   **kw)
    reconstruction = jnp.mean((decoded - batch) ** 2)
    loss = reconstruction + beta * quant.commitment.sum()
    return loss, {"loss": loss, "reconstruction": reconstruction}, {"quant": quant,
                                                                    "variables": updated}
  return forward


def reconstruct(model, variables, embed, x, num_levels):
  """Evaluation mode (running statistics, no dropout), decoding the first `num_levels` levels."""
  latents = model.apply(variables, x, method="encode")
  q = rvq.quantize(embed, latents.reshape(-1, latents.shape[-1]), num_levels).quantized
  return model.apply(variables, q.reshape(latents.shape), method="decode")


def load_digits():
  """(train [1437, 8, 8, 1], test [360, 8, 8, 1]) in [0, 1]: the last 20% held out."""
  images = datasets.load_digits().images.astype(np.float32)[..., None] / 16.0
  split = int(0.8 * len(images))
  return images[:split], images[split:]


def train(num_steps=300, batch_size=64, levels=2, codes=32, seed=0):
  """Returns (state, losses [num_steps], test MSE decoding 1..levels levels, initial variables)."""
  train_x, test_x = load_digits()
  model = DigitsVQVAE()
  params_key, codebook_key, state_key = jax.random.split(jax.random.key(seed), 3)
  variables = model.init(params_key, jnp.asarray(train_x[:batch_size]))
  latents = model.apply(variables, train_x[:batch_size * 4], method="encode")
  codebook = rvq.kmeans_init(codebook_key, latents.reshape(-1, latents.shape[-1]), levels, codes,
                             iterations=10)
  optimizer = optax.adam(3e-3)
  state = steps.init_state(variables, optimizer, codebook, jax.random.key_data(state_key))
  quantizer = steps.QuantizerSettings(levels=levels, codes=codes, dead_code_steps=20,
                                      restart_candidates=64)
  train_step = jax.jit(steps.make_train_step(make_forward(model), optimizer, quantizer))
  order, losses = np.random.default_rng(seed), []
  for _ in range(num_steps):
    batch = jnp.asarray(train_x[order.choice(len(train_x), batch_size, replace=False)])
    state, metrics = train_step(state, batch)
    losses.append(float(metrics["loss"]))
  mse = [float(jnp.mean((reconstruct(model, state.params, state.codebook.embed, test_x, n)
                         - test_x) ** 2)) for n in range(1, levels + 1)]
  return state, np.asarray(losses), mse, variables


if __name__ == "__main__":
  _, losses, mse, _ = train()
  print(f"loss {losses[:10].mean():.4f} -> {losses[-10:].mean():.4f}; test MSE by levels {mse}")
