"""The eigenvalue-predictors study (lib.studies.eigenvalues): its device parameter.

Truths and tolerances:

- The parameter defaults to "cpu", and "cuda" is refused where torch sees no
  CUDA GPU, with an error naming the parameter and the chapter (lib.params.Device).
- An autoencoder trained on CUDA is measured where it lives; the same weights
  moved to the CPU must give the same reconstruction errors and Jacobian
  traces up to float32 rounding in a different summation order: about 1e-6
  relative per layer, so 1e-3 relative on the errors (differences of O(0.1)
  residuals) and 1e-3 of the largest trace on the traces (a sum of products
  that can cancel to near zero at single points).
"""

import copy

import numpy as np
import pytest
import torch

from lib.geometry.spectra import autoencoder_spectra
from lib.models import reconstruction_error
from lib.studies import eigenvalues as study


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_an_autoencoder_trained_on_cuda_is_measured_there_as_on_the_cpu(tmp_path):
    """One ci autoencoder (depth 4, d = 2, 5 epochs), trained and measured on CUDA."""
    config = study.Config(preset="ci", device="cuda")
    table = study.example_spectra(config, tmp_path, depth=4, latent_dim=2)
    model, data = study.trained_model(config, 4, 2, tmp_path)   # read back from the cache
    assert next(model.parameters()).device.type == "cuda"
    on_cpu = copy.deepcopy(model).cpu()
    x = data.flat()[table["point"].to_numpy()]
    np.testing.assert_allclose(table["mse"], reconstruction_error(on_cpu, x), rtol=1e-3)
    spectra = autoencoder_spectra(on_cpu.encoder, on_cpu.decoder, x)
    for column, expected in (("trace_I", spectra.trace_input), ("trace_L", spectra.trace_latent)):
        np.testing.assert_allclose(table[column], expected, rtol=1e-3,
                                   atol=1e-3 * np.abs(expected).max())
