"""model6, the project's own recipe: model5 with a log-magnitude spectrogram, k-means codebook
initialisation and dead-code restarts (chosen by the ablation of docs/RESULTS.md, equal steps).

Each change and why (test split, 1,000 steps each, scored by pretrained/classifier):
  - audio.representation='logmag_phase': the study's linear magnitude spends the MSE on the few
    loud bins; log magnitude is what PESQ and the ear weigh (ablation rows abl_magphase ->
    abl_logmag: PESQ-nb 2.65 -> 3.78, LSD 11.25 -> 4.61 dB, digit accuracy 0.805 -> 0.997).
  - rvq.init='kmeans' + rvq.dead_code_steps=50: codebooks start on the data and unused codes are
    moved onto live residuals. Log magnitude alone leaves a level with 6.4% of its codes in use
    (perplexity 17 over speech); with both, every level uses >= 94.7% at 1,000 steps (perplexity
    >= 362 over the latent positions that cover speech) and PESQ-nb rises 3.78 -> 3.88.
  - no quantizer dropout: with it the full-rate PESQ-nb fell 3.88 -> 3.58 and the low rates did
    not gain (1 level: 2.25 vs 2.24; 4 of 8 levels: 3.30 vs 3.36); the residual quantizer's first
    levels are already a usable codec alone (1 level: digit accuracy 0.993 without dropout).
Later rows beat this recipe at equal steps on PESQ-nb and STOI (abl_realimag_kr_lmloss: 4.24 and
0.991 against 3.88 and 0.930): configs/model7.py is that recipe, trained to the end and shipped
as pretrained/model7 (PESQ-nb 4.39, STOI 0.997; model6 keeps the better LSD and codebook use).

COMMAND: python -m rvq_jax.main --config=configs/model6.py --workdir=runs/model6
         then --mode=evaluate, then --mode=export --output=pretrained/model6
RESULTS (2026-12-02, 2-core CPU, float32, all 100 epochs = 7,400 steps, 2.3 h; shipped as
pretrained/model6; docs/RESULTS.md): test PESQ-nb 4.23 (corpus 4.18), STOI 0.968, LSD 3.10 dB,
SI-SDR 10.75 dB, digit accuracy 0.993 (originals 0.993); every level uses >= 99.8% of its codes,
perplexity over speech 459-496 of 512. Rate-distortion 1 -> 8 levels: PESQ-nb 2.45 -> 4.23, digit
accuracy 0.99-1.00 at every rate; 4 of 8 levels PESQ-nb 3.83. (The study's model5, same steps:
PESQ-nb 3.18, STOI 0.941, LSD 9.15 dB, accuracy 0.879, 445 dead codes on level 0.)
"""

from rvq_jax.configs import model5


def get_config():
  config = model5.get_config()
  config.audio.representation = "logmag_phase"
  config.rvq.init = "kmeans"
  config.rvq.dead_code_steps = 50
  return config
