"""Modeling layer: declare a model once (``Block``, ``Model`` with ``ops``), validate data, prove
homogeneity, load declaration files, and describe activation regions of piecewise-linear nets.

Nothing here solves anything: ``lexmargin.nlp`` and ``lexmargin.problems`` build on it.
"""
