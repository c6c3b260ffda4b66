"""Neural models whose geometry the book measures: MLP autoencoders
(:mod:`lib.models.autoencoder`) and a small CNN classifier (:mod:`lib.models.cnn`),
their training and weight caches."""

from lib.models.autoencoder import (Autoencoder, AutoencoderSpec, TrainingSpec, cache_key,
                                    reconstruction_error, train_autoencoder, trained_autoencoder)

__all__ = ["Autoencoder", "AutoencoderSpec", "TrainingSpec", "cache_key", "reconstruction_error",
           "train_autoencoder", "trained_autoencoder"]
