"""Training-side tools: model zoo, quantization (need TensorFlow)."""
