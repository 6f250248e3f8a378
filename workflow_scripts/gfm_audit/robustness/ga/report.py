"""The robustness (GA attack) section of the HTML report, and the attack table it shows (attack_table.tsv)."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from ...report.elements import html_image, html_table

EXAMPLES = 5


def highlight_changes(original: str, adversarial: str) -> str:
    """The adversarial sequence as HTML, each substituted base marked with the original base in its tooltip."""
    out = []
    for before, after in zip(original, adversarial, strict=True):
        out.append(f"<mark title='{before}&rarr;{after}'>{after}</mark>" if before != after else after)
    return "".join(out)


def examples_html(adversarial: pd.DataFrame, n: int = EXAMPLES) -> str:
    won = adversarial[adversarial.success.astype(bool)].sort_values(["edits", "p_true_after"]).head(n)
    if won.empty:
        return "<p>No successful adversarial sequence to show.</p>"
    items = []
    for row in won.itertuples():
        items.append(
            f"<p><b>{html.escape(str(row.seq_id))}</b> (label {row.label}): p(true class) "
            f"{row.p_true_before:.3f} &rarr; {row.p_true_after:.3f}, {row.edits} substitution(s), "
            f"{row.n_transitions} transition(s), GC {row.gc_before:.3f} &rarr; {row.gc_after:.3f}<br>"
            f"<code class='seq'>{highlight_changes(row.original, row.adversarial)}</code></p>"
        )
    return "".join(items)


ATTACK_NAMES = {
    "ga": "GA",
    "random": "random substitutions",
    "greedy": "greedy, importance-ranked (TextFooler-style)",
    "lm_proposal": "LM-proposed substitutions (BERT-Attack-style)",
    "pgd": "PGD on the relaxed one-hot input",
}


def comparison_html(comparison: pd.DataFrame) -> str:
    """ASR per attack at the full budget (with edits and queries), then the whole table; names the attacks absent."""
    if comparison.empty:
        return "<p>No attack comparison.</p>"
    top = comparison[comparison.budget == comparison.budget.max()].copy()
    top.insert(1, "description", top.attack.map(lambda a: ATTACK_NAMES.get(a, a)))
    missing = [a for a in ATTACK_NAMES if a not in set(comparison.attack)]
    note = (
        f"<p>Not run: {', '.join(html.escape(ATTACK_NAMES[a]) for a in missing)} (the log says why: no proposal "
        "model configured, or a classifier that does not take one-hot input).</p>"
        if missing
        else ""
    )
    return (
        "<h4>Attacks compared on the same sequences under the same constraints</h4>"
        f"<p>{int(top.n_attacked.max())} correctly classified sequences of one seeded test sample; ASR at the "
        f"full budget of {int(top.budget.max())} substitutions; queries = candidates scored per sequence (PGD: "
        "gradient passes too), pruning included.</p>" + html_table(top.drop(columns="budget")) + note
    )


def attack_table(comparison_paths: Mapping[str, str], *, models: Mapping[str, str] | None = None) -> pd.DataFrame:
    """GenoArmory-style table: one row per classifier, one column per attack, ASR at the full edit budget
    (successes within ``max_edits`` substitutions / correctly classified sequences attacked); an attack that did
    not run on a classifier is NaN. ``models`` adds a column describing each classifier."""
    rows = []
    for name, path in comparison_paths.items():
        table = pd.read_csv(path, sep="\t")
        if table.empty:
            continue
        top = table[table.budget == table.budget.max()]
        rows.append(
            {"classifier": name, "budget": int(top.budget.max()), "n_attacked": int(top.n_attacked.max())}
            | dict(zip(top.attack, top.asr, strict=True))
        )
    columns = ["classifier", "budget", "n_attacked", *[a for a in ATTACK_NAMES if any(a in r for r in rows)]]
    table = pd.DataFrame(rows, columns=columns)
    if models is not None:
        table.insert(1, "model", table.classifier.map(lambda n: models.get(n, "")))
    return table


PUBLISHED_FILE = Path(__file__).with_name("genoarmory_published.tsv")


def read_published(path: str | os.PathLike = PUBLISHED_FILE) -> pd.DataFrame:
    """GenoArmory's published figures on GUE prom_300_all, with their provenance in the file's ``#`` header."""
    return pd.read_csv(path, sep="\t", comment="#")


def published_beside(table: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per published figure: GenoArmory's model, task, attack and ASR, our attack of the same kind, and
    that attack's ASR on each of our classifiers (column ``ours: <classifier>``; NaN where it has no counterpart
    or did not run)."""
    out = published[["model", "task", "attack", "asr", "counterpart"]].rename(
        columns={"model": "GenoArmory model", "attack": "GenoArmory attack", "asr": "GenoArmory ASR"}
    )
    ours = table.set_index("classifier")
    for name in ours.index:
        out[f"ours: {name}"] = [
            float(ours.at[name, c]) if c in ours.columns and pd.notna(ours.at[name, c]) else np.nan
            for c in published.counterpart
        ]
    return out.rename(columns={"counterpart": "our attack"})


NOT_COMPARABLE = (
    "GenoArmory's figures are set beside ours, not compared: (1) they are the figures of GenoArmory's repository "
    "(MAGICS-LAB/GenoArmory, metadata/<attack>/<model>.json at commit 997be25, task prom_300_all; the paper's "
    "tables, arXiv:2505.10983, were not reachable here), some of which do not follow from their own accuracies; "
    "(2) GenoArmory attacks fine-tuned full-size GFMs (DNABERT-2 117M, HyenaDNA-small-32k, NT 500M) edited in "
    "their own tokens, while our GFM rows are tiny checkpoints with random weights, a frozen encoder and a linear "
    "head trained here, and our CNN is trained here from scratch; (3) every attack here edits single bases under "
    "hard constraints GenoArmory does not impose (at most k substitutions, GC content within a tolerance, "
    "protected motifs, no new stop codon) and needs the true-class probability to drop by delta besides the "
    "flip; (4) our LM-proposal attack takes its bases from a small character-level LM, BERT-Attack from the "
    "attacked model's own masked LM over its tokens; TextFooler ranks tokens by importance as our greedy attack "
    "ranks bases; our PGD runs on the CNN's one-hot input only, GenoArmory's on token embeddings; FIMBA has no DNA "
    "counterpart here; (5) budgets, query limits and sample sizes differ (here a few dozen sequences; GenoArmory's "
    "BERT-Attack attacks 100)."
)


def attack_table_html(table: pd.DataFrame, published: pd.DataFrame | None = None) -> str:
    """The GenoArmory-style table, then GenoArmory's published figures beside ours with why they are not
    comparable."""
    parts = [
        "<h3>Attack success rate per classifier and attack (GenoArmory-style)</h3><p>ASR at the full edit budget, "
        "every attack under the same constraints on the same sequences of each classifier (n_attacked: the "
        "correctly classified ones of its sample); nan: the attack does not apply (PGD needs one-hot input) "
        "or was not configured.</p>" + html_table(table)
    ]
    if published is not None and not published.empty:
        parts.append(
            "<h4>GenoArmory's figures beside ours</h4>"
            + html_table(published_beside(table, published))
            + f"<p>{html.escape(NOT_COMPARABLE)}</p>"
        )
    return "".join(parts)


def ga_section(
    classifiers: Sequence[str],
    *,
    adversarial_paths: Mapping[str, str],
    summary_paths: Mapping[str, str],
    progress_paths: Mapping[str, str],
    figures: Mapping[str, Sequence[tuple[str, str]]],
    comparison_paths: Mapping[str, str] | None = None,
    cost_paths: Mapping[str, str] | None = None,
    attack_table_path: str | None = None,
    defence_table_path: str | None = None,
    certified_paths: Mapping[str, str] | None = None,
) -> str:
    """HTML for every classifier: headline GA vs random, ASR by budget, the attack comparison, edits, examples,
    adversarial training with its robust-accuracy intervals and cost; the defence rows (with their one-sentence
    verdict) under the attack table, and each classifier's certificates when certify ran."""
    parts = [
        "<h2>Robustness: genetic-algorithm attack on sequence classifiers</h2>",
        "<p>Hard constraints on every candidate: at most k substitutions, GC content within the configured "
        "tolerance, protected motifs untouched, no new in-frame stop codon for coding input. Success = the "
        "predicted class flips and the true-class probability drops by at least &delta;. Only sequences the "
        "model classified correctly are attacked. The random baseline gets the same constraints and, per "
        "sequence, the GA's number of queries.</p>",
    ]
    if attack_table_path:
        parts.append(attack_table_html(pd.read_csv(attack_table_path, sep="\t"), read_published()))
    if defence_table_path:
        from .defence_table import defence_table_html

        parts.append(defence_table_html(pd.read_csv(defence_table_path, sep="\t")))
    for name in classifiers:
        summary = pd.read_csv(summary_paths[name], sep="\t")
        adversarial = pd.read_csv(adversarial_paths[name], sep="\t")
        progress = pd.read_csv(progress_paths[name], sep="\t")
        head = summary[summary.attack.isin(["ga", "random"])].set_index("attack")
        ga_asr, rnd_asr = head.asr.get("ga", float("nan")), head.asr.get("random", float("nan"))
        parts.append(f"<h3>Classifier {html.escape(name)}</h3>")
        parts.append(
            f"<div class='verdict {'leaks' if ga_asr > 0 else 'clean'}'><b>GA success rate "
            f"{100 * ga_asr:.1f}%</b> vs {100 * rnd_asr:.1f}% for random substitutions, over "
            f"{int(head.n_attacked.get('ga', 0))} correctly classified test sequences.</div>"
        )
        parts.append(html_table(summary))
        if comparison_paths and name in comparison_paths:
            parts.append(comparison_html(pd.read_csv(comparison_paths[name], sep="\t")))
        for path, caption in figures.get(name, []):
            parts.append(f"<h4>{html.escape(caption)}</h4>" + html_image(path, caption))
        parts.append("<h4>Example adversarial sequences (substituted bases marked)</h4>" + examples_html(adversarial))
        parts.append("<h4>Adversarial training (held-out set drawn from the test split, never trained on)</h4>")
        parts.append(html_table(progress))
        if cost_paths and name in cost_paths:
            cost = pd.read_csv(cost_paths[name], sep="\t")
            parts.append(
                "<p>Robust accuracy with its 95% Wilson score interval over the held-out set, and the cost of "
                "each iteration: queries spent making training adversarial examples and wall seconds (the only "
                "value that is not reproducible run to run).</p>" + html_table(cost)
            )
        if certified_paths and name in certified_paths:
            parts.append(certified_html(pd.read_csv(certified_paths[name], sep="\t")))
    return "".join(parts)


def certified_html(accuracy: pd.DataFrame) -> str:
    """Certified accuracy by radius (randomised substitution smoothing) beside the base classifier's empirical robust
    accuracy by budget (standard criterion), radii 1 to 5 (the rest is in certified_accuracy.tsv)."""
    shown = accuracy[(accuracy.budget >= 1) & (accuracy.budget <= 5)]
    return (
        "<h4>Certified vs empirical robustness</h4><p>Certified accuracy at radius r: the share of the GA's sample "
        "whose smoothed prediction is correct and provably unchanged by any r substitutions (randomised "
        "substitution smoothing, Lee et al. 2019; it holds with the configured confidence); beside it the empirical "
        "robust accuracy at budget r (correct, and no candidate within r substitutions found by the GA, plus HotFlip "
        "on one-hot classifiers, is misclassified, whatever its probability drop; the base classifier, not the "
        "smoothed one), each with its 95% Wilson interval. A certified figure is a lower bound on the smoothed "
        "classifier's robustness, the empirical one an upper bound on the base classifier's.</p>" + html_table(shown)
    )


def describe_classifier(spec: Mapping[str, Any], folder: str | os.PathLike) -> str:
    """What a classifier is, for the attack table: the CNN, or the GFM family (masked / causal) under a head."""
    # Here, not at the top: the report rule reads this module and needs neither.
    from ...gfm import registry
    from .classifiers import CLASSIFIER_FILE

    meta_file = Path(folder) / CLASSIFIER_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {"kind": "huggingface"}
    if meta["kind"] == "cnn":
        return "CNN on one-hot bases, trained here"
    if meta["kind"] == "gfm_head":
        family = registry.family_module(meta["architecture"])
        return f"{meta['architecture']} ({family.KINDS[0]}) + linear head, encoder frozen"
    if spec["kind"] == "gfm_head":
        return "transformers GFM + sequence-classification head, encoder frozen"
    return "Hugging Face sequence classifier (user's)"


def attack_table_stage(
    comparison_paths: Mapping[str, str],
    *,
    folders: Mapping[str, str],
    specs: Mapping[str, Mapping[str, Any]],
    out_tsv: str,
) -> None:
    """results/robustness/attack_table.tsv: one row per classifier, one ASR column per attack."""
    models = {name: describe_classifier(specs[name], folders[name]) for name in comparison_paths}
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(attack_table(comparison_paths, models=models), tmp)
