"""Robustness I: a genetic-algorithm attack with hard biological constraints on
DNA sequence classifiers, its random baseline, and adversarial training.

Sequences are handled as ``uint8`` arrays (A=0, C=1, G=2, T=3) so that a whole
generation of candidates for many sequences is one array and one forward pass.
"""
