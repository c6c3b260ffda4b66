"""Statistics of the book's measurements: rates, regressions, quantization constants.

Not estimators of a manifold's geometry (those are :mod:`lib.estimators`) but
the arithmetic that judges them:

- :mod:`lib.stats.rates`: power-law fits of an error against the number of
  training points, the rate shapes of theory and the sample size of Niyogi,
  Smale and Weinberger;
- :mod:`lib.stats.regression`: the regressions of per-point test error on
  Jacobian eigenvalue summaries (Agarwala et al., Tables 1-2);
- :mod:`lib.stats.intervals`: the Student-t interval of a mean over seeds;
- :mod:`lib.stats.quantization`: closed forms of quantization theory, the
  reference curves of the Representation Gap.
"""
