"""The nnk-graphs study (lib.studies.nnk_graphs): its device parameter.

Truths and tolerances:

- The parameter defaults to "cpu", and "cuda" is refused where torch sees no
  CUDA GPU, with an error naming the parameter and the chapter (lib.params.Device).
- CNNs trained on CUDA keep their checkpoints under a key holding the device
  type, and the study reads them back from there: every network trains its
  full ci budget (no held-out loss, so none converges early). The input
  layer's features are the digits themselves whatever the network, so its
  NNK neighbourhoods agree exactly across seeds (stability 1.0), wherever
  the network ran; every stability is a mean Jaccard index, in [0, 1].
- The eigenvalue chapter's autoencoders, trained on CUDA, encode there: one
  row per latent dimension, finite, with a local PCA dimension of the codes
  at most d (the codes lie in R^d).
"""

import numpy as np
import pytest
import torch

from lib.studies import eigenvalues
from lib.studies import nnk_graphs as study


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cnns_trained_on_cuda_are_read_back_and_measured(tmp_path):
    """The ci CNNs (8x8 digits, 3 epochs): trained, their records read, their layers graphed."""
    config = study.Config(preset="ci", device="cuda")
    sizes = study.SIZES["ci"]
    trainings = study.cnn_training(config, tmp_path)
    assert len(trainings) == sizes["cnn_seeds"] + 1
    assert (trainings["stopped"] == "budget").all()
    assert (trainings["epochs"] == sizes["cnn_epochs"]).all()
    stability = study.stability(config, tmp_path).set_index("layer")
    assert stability.loc["input", "stability"] == 1.0
    assert stability["stability"].between(0.0, 1.0).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_autoencoder_codes_of_models_trained_on_cuda(tmp_path):
    config = study.Config(preset="ci", device="cuda")
    autoencoders = eigenvalues.Config(preset="ci", device="cuda")
    codes = study.autoencoder_codes(config, autoencoders, tmp_path).set_index("latent d")
    assert list(codes.index) == list(autoencoders.sizes["latent_dims"])
    assert np.isfinite(codes.to_numpy()).all()
    assert (codes["NNK local PCA d"] <= codes.index).all()
