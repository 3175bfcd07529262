"""Every threshold the results page holds a result to, in one place: the codec targets, the
prior's targets, the study's claims' tolerances and the plateau criterion of a prior's bound."""

# The codec targets (issue 15, item 4), each read from a fully trained model's eval.json.
TARGET_PESQ, TARGET_STOI, TARGET_LSD_DB = 4.2, 0.98, 2.5
TARGET_USAGE, TARGET_PERPLEXITY = 0.99, 128
TARGET_HALF_RATE_PESQ, TARGET_ONE_LEVEL_ACCURACY = 3.5, 0.95

# The study's claims (issue 15, item 3), each checked on the runs it is about. A validation-loss
# rise counts against "falls throughout" when it exceeds this share of the epoch before (the
# epoch-to-epoch scatter of a converging run is about 1%); a gain is "marginal" below this share.
RISE_TOLERANCE = 0.05
MARGINAL_GAIN = 0.10

# "Trained until the validation bound stops falling" (issue 16), read off the curve: the best
# validation bound of the last PLATEAU_WINDOW_STEPS steps improves on the best before them by
# less than PLATEAU_TOLERANCE bits/dim (the epoch-to-epoch scatter of the bound is about 0.005).
PLATEAU_WINDOW_STEPS = 1000
PLATEAU_TOLERANCE = 0.005

# The shipped prior's targets (issue 16), for one scored sample setting.
PRIOR_IS_SHARE_OF_REAL = 0.8            # Inception Score >= this x the real test set's
PRIOR_CLASS_SHARE = (0.05, 0.15)        # every digit's share of the samples within this range
PRIOR_REQUESTED_DIGIT = 0.9             # every requested digit recognised at least this often
PRIOR_DEFECTS = 0.05                    # at most this share near-silent, and clipped
PRIOR_MEMORISED = 0.01                  # fewer memorised samples than this share

# The prior's targets against its ceiling (issue 29), for one scored sample setting, each under
# every scorer (the worse counts). The ceiling: real held-out latents through the prior's target
# space and the decoder, scored like samples and at the same size.
CEILING_IS_SHARE = 0.85                 # Inception Score >= this x the ceiling's
CEILING_FD_FACTOR = 3.0                 # size-matched Fréchet distance <= this x the ceiling's
CEILING_REQUESTED = (0.95, 0.85)        # requested digit: overall, and every digit
CEILING_UNCONDITIONAL_SHARE = (0.08, 0.12)   # an unconditional prior's class shares
CEILING_DEFECTS = 0.02                  # at most this share near-silent or clipped

# An anchor prior whose best setting is heard as the requested digit at most this often (worse
# scorer; chance is 0.1) has not learned to speak digits: the page says it is no baseline yet.
ANCHOR_LEARNED_REQUESTED = 0.2
