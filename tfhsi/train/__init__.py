"""Training and evaluation of any model that maps patches to class scores.

:mod:`tfhsi.train.metrics` holds the HSI metrics (OA, AA, Kappa, per-class figures,
confusion matrix, mean ± std over seeds) in plain numpy; :mod:`tfhsi.train.evaluate`
scores any ``predict`` callable (a Keras model or a ``.tflite`` file alike).
"""
