"""Stage 6: memorisation beyond membership (rules/memorisation.smk).

``canaries``: planted random or SNP-rich sequences, inserted into the target's training data
r times each, beside as many never-inserted ones; ``exposure``: their exposure (Carlini et al.
2019, "The Secret Sharer"); ``extraction``: prefix-to-suffix extraction of training windows
(Carlini et al. 2021; Nasr et al. 2023), greedy and sampled for causal models, iterative
unmasking for masked ones; ``kmer``: the Markov baseline that extraction is compared with;
``plots`` and ``report``: its figures and report section.
"""
