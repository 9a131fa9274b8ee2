"""Measure exported models: accuracy and latency on LiteRT, size, TFLite Micro arena.

:mod:`tfhsi.profile.interpreter` is the only place in tfhsi that builds a LiteRT
interpreter; its :class:`~tfhsi.profile.interpreter.TFLiteModel` offers a ``predict``
that plugs into :func:`tfhsi.train.evaluate.evaluate`.
"""
