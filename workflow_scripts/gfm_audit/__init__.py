"""gfm-audit: privacy and robustness audits of genomic foundation models.

The science lives here, importable and testable without Snakemake; the rule
scripts under ``workflow_scripts/scripts`` only read ``snakemake.input`` /
``snakemake.params`` and call into this package.
"""

__version__ = "0.1.0"
