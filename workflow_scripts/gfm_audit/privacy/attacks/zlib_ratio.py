"""zlib attack (Carlini et al. 2021, "Extracting training data from large language models").

score(x) = -L(x) / zlib(x), with L the mean per-token NLL and zlib(x) the
length in bytes of the zlib-compressed sequence: the loss is judged against
how compressible (repetitive) the sequence is. Higher score = member.
"""

NAME = "zlib"


def features(params):
    return {"loss", "zlib_bytes"}


def missing(data):
    return None


def run(data):
    loss = data.windows(data.target)["loss"].to_numpy(float)
    size = data.windows(data.target)["zlib_bytes"].to_numpy(float)
    return {"zlib": -loss / size}
