"""Model compression: pruning, quantization-aware training, distillation, clustering, lowering."""
