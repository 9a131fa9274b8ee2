"""tfhsi: model optimisation for hyperspectral image classification with TensorFlow.

Importing the package is cheap: TensorFlow is loaded only by :mod:`tfhsi._keras`,
and only by the modules that need it.
"""

__version__ = "0.1.0"
