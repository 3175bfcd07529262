"""A 1-D convolutional codec on raw 8 kHz waveforms, trained with rvq_jax's step and quantizer.

What other research code can take from rvq_jax, with its own model and data: `steps.make_train_step`
(any Flax module with `encode` / `decode` methods around the residual quantizer, any optax optimizer
and loss), `steps.QuantizerSettings`, `steps.init_state` and the quantizer's `rvq.kmeans_init` and
`rvq.quantize`. Nothing here is specific to spectrograms. Run: python examples/waveform_codec.py
"""

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rvq_jax import data
from rvq_jax.configs import default
from rvq_jax.models import rvq
from rvq_jax.models import vqvae
from rvq_jax.train import steps


class WaveCodec(nn.Module):
  """Strided 1-D convs: [B, T] waveforms <-> [B, T / 4**len(features), latent_dim] latents."""
  features: tuple = (32, 64)
  latent_dim: int = 32

  def setup(self):
    self.down = [nn.Conv(w, (8,), strides=(4,), padding="SAME") for w in self.features]
    self.to_latent = nn.Conv(self.latent_dim, (1,))
    self.up = [nn.ConvTranspose(w, (8,), strides=(4,), padding="SAME")
               for w in reversed(self.features)]
    self.to_wave = nn.Conv(1, (7,), padding="SAME")

  def encode(self, x):
    h = x[..., None]
    for conv in self.down:
      h = nn.gelu(conv(h))
    return self.to_latent(h)

  def decode(self, z):
    for conv in self.up:
      z = nn.gelu(conv(z))
    return self.to_wave(z)[..., 0]

  def __call__(self, x):   # init traces both halves
    return self.decode(self.encode(x))


def waveform_loss(decoded, batch):
  """`loss_fn` of make_train_step: reconstruction (MSE of the scaled waveform) and metrics."""
  mse = jnp.mean((decoded - batch)**2)
  return mse, {"waveform_mse": mse}


def train(num_steps=300, batch_size=16, levels=4, codes=256, seed=0, test_clips=64,
          data_dir=None):
  """Trains the codec on FSDD's training split. Returns (state, per-step losses [num_steps],
  SNR in dB of the first `test_clips` test clips decoding 1..levels levels)."""
  data_config = default.get_config().data
  data_config.data_dir = data_dir   # None: $FSDD_DIR, else the download cache
  dataset = data.load_dataset(data_config)
  train_waves, test_waves = dataset["train"].waveforms, dataset["test"].waveforms[:test_clips]
  model = WaveCodec()
  params_key, codebook_key, state_key = jax.random.split(jax.random.key(seed), 3)
  params = model.init(params_key, train_waves[:1])
  latents = model.apply(params, train_waves[:batch_size], method="encode")
  codebook = rvq.kmeans_init(codebook_key, latents.reshape(-1, latents.shape[-1]), levels, codes,
                             iterations=10)
  optimizer = optax.adam(1e-3)
  state = steps.init_state(params, optimizer, codebook, jax.random.key_data(state_key))
  quantizer = steps.QuantizerSettings(levels=levels, codes=codes, decay=0.99,
                                      dead_code_steps=20, restart_candidates=256)
  forward = steps.autoencoder_forward(model, waveform_loss, beta=0.25)
  train_step = jax.jit(steps.make_train_step(forward, optimizer, quantizer),
                       donate_argnums=0)
  order, losses = np.random.default_rng(seed), []
  for _ in range(num_steps):
    batch = jnp.asarray(train_waves[order.choice(len(train_waves), batch_size, replace=False)])
    state, metrics = train_step(state, batch)
    losses.append(float(metrics["loss"]))

  @jax.jit
  def reconstruct(params, embed, x, num_levels):
    return vqvae.autoencode(model, params, embed, x, num_levels)[0]

  errors = [np.sum((test_waves - np.asarray(reconstruct(
      state.params, state.codebook.embed, test_waves, n)))**2) for n in range(1, levels + 1)]
  snr = [float(10 * np.log10(np.sum(test_waves**2) / e)) for e in errors]
  return state, np.asarray(losses), snr


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args()
  _, losses, snr = train(args.steps)
  print(f"loss {losses[:10].mean():.4f} (first 10 steps) -> {losses[-10:].mean():.4f} (last 10)")
  print("test SNR by levels decoded: " + ", ".join(f"{n + 1}: {s:.2f} dB" for n, s in enumerate(snr)))
