"""Quantization: observers (min-max, ACIQ, OMSE, EMA-MSE), quantizers on the fused ops, quantized layers,
BatchNorm folding, model conversion and calibration."""
from .config import QuantConfig, parse_bits
from .convert import (
    as_config,
    calibrate,
    export_int_weights,
    fold_batchnorm,
    load_quantized,
    matmul_quantizers,
    quant_layers,
    quantize_model,
    save_quantized,
)
from .modules import QuantConv1d, QuantConv2d, QuantConvTranspose2d, QuantLinear, QuantMatMul
from .observers import ACIQObserver, EMAMSEObserver, MinMaxObserver, MSEObserver, make_observer, mse_search
from .quantizers import ActQuantizer, WeightQuantizer

__all__ = [
    "ACIQObserver", "ActQuantizer", "QuantConfig", "as_config", "EMAMSEObserver", "MSEObserver", "MinMaxObserver",
    "QuantConv1d", "QuantConv2d", "QuantConvTranspose2d", "QuantLinear", "QuantMatMul", "WeightQuantizer",
    "calibrate", "export_int_weights", "fold_batchnorm", "load_quantized", "make_observer", "matmul_quantizers",
    "mse_search", "parse_bits", "quant_layers", "quantize_model", "save_quantized",
]
