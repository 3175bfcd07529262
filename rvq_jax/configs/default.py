"""Default configuration: every field the project reads, documented. Other configs start here.

The defaults are model1 of the study (configs/model1.py); see configs/model1.py .. model5.py.

COMMANDS:
  Figure 1 of the original report (magnitude and phase of one "nine"):
    python -m rvq_jax.main --config=configs/default.py --workdir=runs/figure1 --mode=spectrogram_figure
  Train:
    python -m rvq_jax.main --config=configs/default.py --workdir=runs/default
"""

from ml_collections import config_dict

from rvq_jax.data.fsdd import FSDD_SPEAKERS


def get_config():
  config = config_dict.ConfigDict()
  config.task = "vqvae"   # rvq_jax.tasks: what --mode runs
  config.seed = 0

  # ---- data: FSDD recordings -> split, filtered, padded, scaled waveforms (rvq_jax.data) ----
  config.data = config_dict.ConfigDict()
  # Folder of FSDD WAVs; unset: $FSDD_DIR, else the cache (downloading `download_url` once).
  config.data.data_dir = config_dict.placeholder(str)
  # Downloads and prepared arrays; unset: $RVQ_JAX_CACHE, else $XDG_CACHE_HOME/rvq_jax, ~/.cache/rvq_jax.
  config.data.cache_dir = config_dict.placeholder(str)
  config.data.use_cache = True
  config.data.release = "v1.0.10"
  config.data.download_url = (
      "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz")
  config.data.expected_files = 3000        # a download holding another count is rejected
  config.data.sample_rate = 8000           # Hz; files at another rate are skipped with a warning
  # Longer recordings are dropped (17 of 3,000 at 8192, i.e. 99.4% kept); shorter are zero-padded.
  # Must be a multiple of audio.hop_length; 8192 / 64 = 128 spectrogram frames.
  config.data.max_samples = 8192
  config.data.test_last_index = 4          # official split: repetition index 0-4 is test
  config.data.val_first_index = 5          # validation: indices 5-9 of every speaker and digit,
  config.data.val_last_index = 9           # carved from the official train indices 5-49
  # Speaker table: a speaker's index is its position here, whatever files the folder holds; a file
  # of a speaker not listed (e.g. a stray 3_mallory_0.wav) is skipped with a warning.
  config.data.speakers = FSDD_SPEAKERS

  # ---- audio: waveform <-> [bins, frames, 2] spectrogram (rvq_jax.audio) ----
  config.audio = config_dict.ConfigDict()
  config.audio.frame_length = 254          # samples per window (31.75 ms); 254 // 2 + 1 = 128 bins
  config.audio.hop_length = 64             # samples between frames (8 ms)
  config.audio.representation = "mag_phase"  # or 'logmag_phase', 'real_imag'
  config.audio.log_eps = 1e-5              # floor inside log |X| for 'logmag_phase'

  # ---- model: encoder / decoder networks (rvq_jax.models.vqvae) ----
  config.model = config_dict.ConfigDict()
  config.model.encoder_features = (32, 64)  # stride-2 3x3 convs; the decoder mirrors them
  config.model.latent_dim = 128             # 1x1 conv to the latent; = codebook vector size
  # Latent-grid rows (frequency bands) folded into one latent vector (models/autoencoder.py): 1 is
  # the study's grid of 32 x 32 vectors per clip; 32 a latent along time alone, one vector a frame.
  config.model.fold_rows = 1
  config.model.kernel_size = 3
  config.model.decoder = "deterministic"    # or 'gaussian' (model3: per-pixel mean + log-scale, NLL)
  config.model.min_log_scale = -5.0         # gaussian decoder: soft floor of the log std
  config.model.sample_reconstruction = False  # gaussian decoder: sample instead of the mean
  config.model.subpixel_decoder = True      # conv_impl 'xla': the exact sub-pixel form of ConvTranspose
  # 'auto': convolutions as matmuls on the CPU (where XLA's convolution gradients are slow), XLA's
  # convolutions on GPU/TPU; or 'matmul' | 'xla' explicitly. Every form computes the same function.
  config.model.conv_impl = "auto"
  # Activations of the encoder and decoder: 'float32' or 'bfloat16' (mixed precision: parameters,
  # optimizer state, loss and the whole quantizer stay float32).
  config.model.compute_dtype = "float32"

  # ---- rvq: residual quantizer with EMA codebooks (rvq_jax.models.rvq) ----
  config.rvq = config_dict.ConfigDict()
  config.rvq.levels = 5
  config.rvq.codes = 512                    # codebook size K per level
  config.rvq.decay = 0.99                   # gamma of the EMA codebook update
  config.rvq.eps = 1e-5                     # Laplace smoothing of the EMA counts
  config.rvq.init = "uniform"               # 'uniform' | 'glorot_normal' | 'kmeans' (first batch)
  config.rvq.uniform_scale = 0.05           # 'uniform': U(-s, s), Keras' default
  config.rvq.init_count = 1.0               # EMA count each code starts with
  config.rvq.kmeans_iterations = 10
  config.rvq.dead_code_steps = 0            # >0: restart codes unused this many steps (0: off)
  config.rvq.restart_count = 1.0            # EMA count a restarted code starts with
  config.rvq.restart_candidates = 1024      # residual vectors per step offered to restarts
  config.rvq.dropout = False                # quantizer dropout: train on 1..levels levels at random
  config.rvq.dropout_min_levels = 1
  config.rvq.block_rows = 1024              # nearest-code search in row blocks (speed only)
  # The training step's nearest-code search: 'exact' (min, then argmin) or 'packed' (one
  # reduction over keys packing the distance's bits with the code index; exact but for
  # near-ties, rvq._nearest_in_block_packed; benchmarks/RESULTS.md, issue 33).
  config.rvq.nearest_search = "exact"
  config.rvq.statistic_groups = 16          # EMA sums in row groups (precision; a multiple of devices)

  # ---- loss and optimizer ----
  config.loss = config_dict.ConfigDict()
  config.loss.beta = 0.25                   # weight of the (summed over levels) commitment loss
  # A loss on the magnitude in the log domain, added to the reconstruction loss (0: the study's
  # plain MSE): weight x mean (log M_hat - log M)^2, M = sqrt(|X|^2 + eps^2), eps in the scaled
  # units the model sees. For 'real_imag' and 'mag_phase', whose channels are not log magnitudes.
  config.loss.log_magnitude_weight = 0.0
  config.loss.log_magnitude_eps = 1e-2
  config.optim = config_dict.ConfigDict()
  config.optim.learning_rate = 1e-3         # Adam
  config.optim.b1 = 0.9
  config.optim.b2 = 0.999
  config.optim.warmup_steps = 0             # linear warm-up from 0, then the schedule
  config.optim.schedule = "constant"        # or 'cosine': decay to final_lr_fraction x the peak
  config.optim.decay_steps = 0              # 'cosine': the step it reaches the end (incl. warm-up)
  config.optim.final_lr_fraction = 0.0      # 'cosine': the end value / learning_rate
  config.optim.grad_clip_norm = 0.0         # 0: no clipping

  add_loop_sections(config)

  # ---- outputs at the end of training ----
  config.eval = config_dict.ConfigDict()
  config.eval.num_audio = 300               # test recordings written as WAV (original + reconstruction)
  config.eval.num_figures = 4               # reconstruction spectrogram figures
  # --mode=evaluate and the prior score with this classifier: the shipped one (pretrained/, trained
  # with configs/classifier.py), so every machine scores with the same judge.
  config.eval.classifier_workdir = "pretrained/classifier"
  # Baselines (--mode=evaluate) and the classifier's robustness rows (classifier_eval.json): the
  # test split after Griffin-Lim from the true magnitude, mu-law companding, white noise.
  config.eval.griffin_lim_iterations = 100
  config.eval.mu_law_bits = 4
  config.eval.noise_snr_db = 20.0
  # PESQ-nb / STOI on the first this many test recordings (unset: all); host-side, ~1 s per 300.
  config.eval.perceptual_examples = config_dict.placeholder(int)
  config.eval.pesq_segment_seconds = 8.0    # corpus PESQ: P.862 recommends 8-12 s of speech

  # ---- codec: --mode=reconstruct / encode / decode --input=... --output=... (rvq_jax.codec) ----
  config.codec = config_dict.ConfigDict()
  config.codec.levels = config_dict.placeholder(int)   # quantizer levels coded (bit rate); unset: all
  # Long recordings are coded in windows of this many latent frames (x hop x 2^encoder layers
  # samples: 64 -> 2.05 s for model5), each with `context_frames` more on both sides that are
  # computed and dropped, so that memory stays bounded and the result equals the whole-signal one.
  config.codec.window_frames = 64
  config.codec.context_frames = 4
  # Frames are computed in multiples of this many (the recording zero-padded at its end, the codes
  # padded with the code of silence), so recordings of any lengths share a few compiled shapes;
  # window_frames must be a multiple of it.
  config.codec.bucket_frames = 16
  # Input WAVs: sample rates outside this range are refused before resampling (a header declaring
  # 1 Hz would otherwise be resampled to millions of samples); a float WAV peaking above
  # max_input_peak (full scale 1.0) is refused as not audio at PCM scale, above 1.0 warned.
  config.codec.min_sample_rate = 4000
  config.codec.max_sample_rate = 192000
  config.codec.max_input_peak = 100.0
  config.codec.max_decode_seconds = 10800.0   # a coded file declaring more audio is refused
  # The bitstream's entropy model (rvq_jax/bitstream.py): each code is coded under the counts of
  # its context's group (level 0: the left neighbour; below: the level above); the context values
  # are fitted into this many groups a level (benchmarks/code_context_entropy.py: 16 groups keep
  # 5.89 of the 5.80 bits per code of one group per value, against 7.17 without context).
  config.codec.entropy_context_groups = 16
  config.codec.entropy_fit_iterations = 30
  # Variable depth (bitstream format 3): each latent position keeps only the fewest levels, at
  # least `min_levels`, whose sum is within `depth_tolerance` (squared distance in latent space)
  # of the sum of all `levels`; silence and steady sounds stop early, so the bit rate falls far
  # more than the quality (docs/RESULTS.md, the codec's rate-distortion). 0: off, every position
  # coded to `levels` (format 2). The entropy model has one table of depth counts per tolerance
  # of `depth_fit_tolerances`; each file is coded with the table that costs it the fewest bits
  # (any tolerance decodes).
  config.codec.depth_tolerance = 0.0
  config.codec.min_levels = 1
  config.codec.depth_fit_tolerances = (1.2, 0.3, 0.1, 0.03)
  # Bitstream format 4 (rvq_jax/context_model.py): every code under a small network of its level
  # that reads 13 causal neighbours' codes, the levels above at its position and its row, trained
  # by --mode=entropy_model on the training split for `context_epochs` epochs (0: no networks,
  # files stay format 3). One ReLU layer of `context_hidden` units over `context_embed`-wide
  # embeddings; stored in float16 beside entropy_model.json.
  config.codec.context_epochs = 4
  # Encode with the networks when the entropy model has them (format 4); False: format 3, ~10x
  # faster to encode and decode and ~9% more bits (benchmarks/RESULTS.md).
  config.codec.networks = True
  config.codec.context_embed = 16
  config.codec.context_hidden = (256,)
  config.codec.context_batch_size = 1024
  config.codec.context_learning_rate = 2e-3
  config.codec.context_weight_decay = 1e-4
  config.codec.context_seed = 0

  # ---- figures ----
  config.figures = config_dict.ConfigDict()
  config.figures.example_recording = "9_jackson_0"  # Figure 1: a test-split "nine"
  return config


def add_loop_sections(config) -> None:
  """The `train` and `parallel` sections every trained model reads (the VQ-VAE, the prior)."""
  # ---- training loop (rvq_jax.train.trainer; the classifier has its own batch and epochs) ----
  config.train = config_dict.ConfigDict()
  config.train.batch_size = 32              # global batch, divisible by the device count
  config.train.num_epochs = 100
  config.train.num_steps = config_dict.placeholder(int)  # stop early at this step (tests, smoke)
  config.train.log_every_steps = 10         # progress-bar refresh (one host sync each)
  config.train.checkpoint_every_steps = 500
  config.train.keep_checkpoints = 2
  config.train.eval_batch_size = 64
  config.train.progress_bar = True

  # ---- parallelism ----
  config.parallel = config_dict.ConfigDict()
  config.parallel.mode = "auto"             # 'auto' (sharded if >1 device) | 'jit' | 'sharded' | 'pmap'
