"""Neural models whose geometry the book measures: MLP autoencoders
(:mod:`lib.models.autoencoder`), their training and a weight cache."""

from lib.models.autoencoder import (Autoencoder, AutoencoderSpec, TrainingSpec, cache_key,
                                    reconstruction_error, train_autoencoder, trained_autoencoder)

__all__ = ["Autoencoder", "AutoencoderSpec", "TrainingSpec", "cache_key", "reconstruction_error",
           "train_autoencoder", "trained_autoencoder"]
