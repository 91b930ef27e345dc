"""tinyml: compile int8 TensorFlow Lite CNNs into bit-exact C for Cortex-M."""

__version__ = "0.1.0"
