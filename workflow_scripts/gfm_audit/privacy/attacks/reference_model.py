"""Reference-model attack (Carlini et al. 2021, "Extracting training data from large language models").

score(x) = L_ref(x) - L_target(x): how much better the target fits x than a
reference model that did not train on it, which cancels how easy x is in
general. Higher score = member. One variant per reference model in
attacks.reference.models (default: every other scored model), and
``reference_refs`` against the mean loss of the workflow's reference models.
"""

NAME = "reference"


def features(params):
    return {"loss"}


def _reference_models(data):
    chosen = data.params.get("reference", {}).get("models") or [
        m for m in data.features if m != data.target and m not in data.references
    ]
    return [m for m in chosen if m != data.target]


def missing(data):
    if not _reference_models(data) and not data.references:
        return "needs a reference model: configure another model, or reference models (membership.reference_models)"
    return None


def run(data):
    target = data.windows(data.target)["loss"].to_numpy(float)
    out = {f"reference_{m}": data.losses([m])[0] - target for m in _reference_models(data)}
    if data.references:
        out["reference_refs"] = data.losses(data.references).mean(axis=0) - target
    return out
