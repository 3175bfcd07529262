"""model5 = model4 with 8 RVQ levels: the study's best model, its losses fall throughout.

COMMAND: python -m rvq_jax.main --config=configs/model5.py --workdir=runs/model5
RESULTS (2026-12-02, 2-core CPU, float32, all 100 epochs = 7,400 steps, 2.1 h of training, shipped
as pretrained/model5; docs/RESULTS.md): validation loss 0.0276 (reconstruction 0.0150, commitment
0.0503); its losses fall over the run as the study says (validation 0.360 -> 0.0276; epoch-to-epoch
rises are small and late). --mode=evaluate (test split, pretrained/classifier): PESQ-nb 3.18 (corpus
3.28), STOI 0.941, SI-SDR 10.49 dB, LSD 9.15 dB, digit accuracy 0.879 (originals 0.993). Level 0
leaves 445 of 512 codes dead; over the positions that cover speech its perplexity is 56, levels 1-7
392-475. Rate-distortion 1 -> 8 levels: PESQ-nb 1.47 -> 3.18, accuracy 0.45 -> 0.88.
"""

from rvq_jax.configs import model4


def get_config():
  config = model4.get_config()
  config.rvq.levels = 8
  return config
