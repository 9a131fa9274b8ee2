"""Model compression: pruning, quantization-aware training, distillation, clustering, lowering.

Each method follows one rhythm - prepare (wrap or rebuild) → train with the callbacks it
needs → finalize (strip) - and reports what it achieved, measured from the weights:

- :mod:`~tfhsi.compress.prune`: TF-MOT magnitude pruning (polynomial/constant, per-layer
  targets, skip patterns, 2:4), mask-update frequency derived from steps per epoch.
- :mod:`~tfhsi.compress.filter_prune`: structured filter pruning that rebuilds a smaller
  dense model (fine-tune it afterwards).
- :mod:`~tfhsi.compress.sparsity`: measured kernel sparsity, raw and gzip sizes.

Importing this package imports nothing heavy; the method modules import TensorFlow.
Combining methods is the recipe runner's job, not the methods'.
"""
