"""Native implementations of genomic foundation model families (no remote code)."""
