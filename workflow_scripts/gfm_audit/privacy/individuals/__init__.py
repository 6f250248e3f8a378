"""Membership mode ``individuals``: was this person's genome in the training set, and what does the model reveal?

The unit of membership is a person (both haplotypes of every window), not a window. The target trains on
the haplotype windows of a seeded share of the individuals (members); each reference model on those of
its own seeded random half. Per-sequence scores are then aggregated into one score per person, and the
target is asked which allele a person carries at a hidden site (genotype / attribute inference).

``membership``: who each model trains on; ``scores``: scoring the haplotypes and reading the scores back;
``person_attacks``: one score per person; ``windows_curve``: AUC against windows per person;
``genotype_inference``: which allele at a hidden site; ``report``: the report section; ``tables``: reading
this mode's tables. The haplotypes are built in ``privacy/haplotypes.py``, the rules' adapters are in
``privacy/stages.py``.
"""
