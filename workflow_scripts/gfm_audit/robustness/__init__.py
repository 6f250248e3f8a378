"""The robustness audits: ``ga`` (genetic-algorithm attack on DNA sequence classifiers) and ``fimba``
(SHAP-guided attack on gene-expression classifiers)."""
