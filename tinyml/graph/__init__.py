"""Graph IR and importers."""

from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.graph.tflite_import import load_tflite, parse_tflite

__all__ = ["Graph", "Op", "Quant", "Tensor", "load_tflite", "parse_tflite"]
