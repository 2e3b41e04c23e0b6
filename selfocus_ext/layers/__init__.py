"""Layers that models build with and that quantization replaces: they sit below both ``models`` and ``quant``,
so quantization code never imports model code."""
from .deform import DeformConv1d, ModulatedDeformConv2d, deform_conv1d, offsets_and_mask
from .matmul import MatMul

__all__ = ["DeformConv1d", "MatMul", "ModulatedDeformConv2d", "deform_conv1d", "offsets_and_mask"]
