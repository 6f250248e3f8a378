"""zlib attack (Carlini et al. 2021, "Extracting training data from large language models").

score(x) = -L(x) / zlib(x), with L the mean per-token NLL and zlib(x) the
length in bytes of the zlib-compressed sequence: the loss is judged against
how compressible (repetitive) the sequence is. Higher score = member.
"""

import zlib

import numpy as np

NAME = "zlib"


def missing(data):
    return None


def run(data):
    loss = data.windows(data.target)["loss"].to_numpy(float)
    size = np.array([len(zlib.compress(data.sequences[w].encode(), 9)) for w in data.window_ids], dtype=float)
    return {"zlib": -loss / size}
