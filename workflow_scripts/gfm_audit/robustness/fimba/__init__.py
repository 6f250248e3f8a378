"""Robustness II: the FIMBA attack (feature-importance black-box attack) on
gene-expression classifiers, its ablations, spectral detection, and VAE poisoning.
"""
