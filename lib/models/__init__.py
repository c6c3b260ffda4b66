"""Neural models whose geometry the book measures: MLP autoencoders
(:mod:`lib.models.autoencoder`), a small CNN classifier (:mod:`lib.models.cnn`) and the
convolutional beta-VAE (:mod:`lib.models.beta_vae`), their training and weight caches,
and the activations and Jacobians of their layers (:mod:`lib.models.taps`)."""

from lib.models.autoencoder import (Autoencoder, AutoencoderSpec, TrainingSpec, cache_key,
                                    reconstruction_error, train_autoencoder, trained_autoencoder)

__all__ = ["Autoencoder", "AutoencoderSpec", "TrainingSpec", "cache_key", "reconstruction_error",
           "train_autoencoder", "trained_autoencoder"]
