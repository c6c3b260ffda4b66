"""Neural models whose geometry the book measures, their training and weight caches.

- :mod:`lib.models.autoencoder`: MLP autoencoders (the eigenvalue chapter);
- :mod:`lib.models.beta_vae`: the convolutional beta-VAE of Burgess et al.;
- :mod:`lib.models.cnn`: a small CNN classifier with a checkpoint per epoch;
- :mod:`lib.models.denoiser`: denoisers trained on a finite sample, with and
  without a symmetry built in (the Representation Gap chapter);
- :mod:`lib.models.training`: one training engine, a seeded minibatch loop
  that keeps the best state and stops when the validation loss has converged
  (:class:`~lib.models.training.Convergence`), with a record of why it stopped;
- :mod:`lib.models.ensemble`: K models of one architecture trained at once
  (``torch.func`` ``vmap`` over stacked parameters), each as the engine would
  train it alone;
- :mod:`lib.models.taps`: what any named layer of a torch model makes of its
  inputs (features by forward hooks, exact Jacobians by forward-mode autodiff);
- ``lib.models._shared`` (internal): seeds, cache keys, checks, seeded layers
  and the weight cache that the model modules share.
"""

from lib.models.autoencoder import (Autoencoder, AutoencoderSpec, TrainingSpec, cache_key,
                                    reconstruction_error, train_autoencoder, trained_autoencoder)

__all__ = ["Autoencoder", "AutoencoderSpec", "TrainingSpec", "cache_key", "reconstruction_error",
           "train_autoencoder", "trained_autoencoder"]
