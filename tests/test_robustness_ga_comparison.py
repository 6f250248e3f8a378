"""The attacks compared with the GA (greedy, LM-proposal, PGD) and Madry-style adversarial training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gfm_audit.robustness.ga import classifiers, comparison, constraints, data, search
from gfm_audit.robustness.ga.adversarial_training import adversarial_training, wilson_interval
from gfm_audit.robustness.ga.clean_training import train_classifier_stage
from gfm_audit.robustness.ga.comparison import compare_attacks_stage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness_ga import ATTACK, GUE, TRAINING, Recorder, _subset_csv, assert_obeys, hamming


def position_seven(codes: np.ndarray) -> np.ndarray:
    """P(class 1) is driven by a G at position 7; every other position matters 100x less."""
    z = -3 + 6 * (codes[:, 7] == 2) + 0.06 * (codes == 3).sum(axis=1) / codes.shape[1]
    p1 = 1 / (1 + np.exp(-z))
    return np.stack([1 - p1, p1], axis=1)


def test_greedy_ranks_the_known_important_position_first_and_flips_with_its_best_base():
    original = "ACTTACATCAGTCATCGATCTAGCATGCAT"  # position 7 is T, not G: class 0
    codes = data.encode([original])
    labels = np.array([0])
    c = constraints.Constraints(max_edits=3, gc_tolerance=1.0, protected_motifs=())
    protected = np.zeros(codes.shape, dtype=bool)
    order, p_single, _ = comparison.rank_positions(
        position_seven,
        codes,
        labels,
        protected=protected,
        proposals=comparison.all_alternatives(codes),
        constraints=c,
    )
    assert order[0, 0] == 7
    assert p_single[0, 7].argmin() == 2  # G
    assert np.isinf(p_single[0, np.arange(30), codes[0]]).all()  # the original base is never a proposal
    p_before = position_seven(codes)[:, 0]
    res = comparison.greedy_attack(
        position_seven, codes, labels, p_true_before=p_before, protected=protected, constraints=c, delta=0.2
    )
    assert res.success[0] and data.decode(res.adversarial)[0] == original[:7] + "G" + original[8:]
    # Queries by hand: the original, 30 positions x 3 bases in the ranking, then 3 bases at position 7.
    assert res.queries[0] == 1 + 90 + 3


def test_a_protected_position_is_never_ranked_or_changed():
    original = "ACTTACATCAGTCATCGATCTAGCATGCAT"
    codes = data.encode([original])
    protected = np.zeros(codes.shape, dtype=bool)
    protected[0, 5:10] = True
    c = constraints.Constraints(max_edits=3, gc_tolerance=1.0, protected_motifs=())
    p_before = position_seven(codes)[:, 0]
    res = comparison.greedy_attack(
        position_seven, codes, np.array([0]), p_true_before=p_before, protected=protected, constraints=c, delta=0.2
    )
    assert not res.success[0]
    assert (res.adversarial[0, 5:10] == codes[0, 5:10]).all()


def random_proposer(seed: int):
    rng = np.random.default_rng(seed)

    def proposer(codes):
        p = rng.random((*codes.shape, 4))
        return p / p.sum(axis=-1, keepdims=True)

    return proposer


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seq=st.text(alphabet="ACGT", min_size=24, max_size=60),
    motif_insert=st.sampled_from(["TATAAA", "CCAAT", "GGGCGG", "TTTATA", ""]),
    max_edits=st.integers(1, 5),
    gc_tol=st.sampled_from([0.0, 0.02, 0.05, 0.2]),
    coding=st.booleans(),
    frame=st.integers(0, 2),
    seed=st.integers(0, 1000),
)
def test_every_candidate_of_greedy_lm_proposal_and_pgd_obeys_every_constraint(
    seq, motif_insert, max_edits, gc_tol, coding, frame, seed
):
    """The GA's property test, for the compared attacks: every scored candidate and every reported one."""
    import torch

    original = seq[: len(seq) // 2] + motif_insert + seq[len(seq) // 2 :]
    c = constraints.Constraints(
        max_edits=max_edits, gc_tolerance=gc_tol, coding=coding, frame=frame, protected_motifs=("TATAAA", "CCAAT")
    )
    codes = data.encode([original])
    protected = constraints.protected_mask([original], c.protected_motifs)
    torch.manual_seed(seed)
    cnn = classifiers.CNNClassifier("t", len(original), channels=4, kernel=3, seed=seed)
    label = np.array([int(cnn.predict_proba(codes)[0].argmax())])
    p_before = cnn.predict_proba(codes)[np.arange(1), label]
    rec = Recorder(cnn.predict_proba)
    cnn.predict_proba = rec
    common = dict(p_true_before=p_before, protected=protected, constraints=c, delta=0.01)
    results = [
        comparison.greedy_attack(rec, codes, label, **common),
        comparison.lm_proposal_attack(rec, codes, label, **common, proposer=random_proposer(seed), top_k=2),
        comparison.pgd_attack(cnn, codes, label, **common, steps=5, step_size=0.5),
    ]
    results += [
        search.prune_edits(rec, r, originals=codes, labels=label, protected=protected, constraints=c, delta=0.01)
        for r in results
    ]
    for cand in data.decode(np.concatenate(rec.seen)) + [data.decode(r.adversarial)[0] for r in results]:
        assert_obeys(original, cand, c)


def test_lm_proposals_are_the_top_k_bases_other_than_the_original():
    probs = np.array([[[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.15, 0.05]]])
    codes = np.array([[3, 0]], dtype=np.uint8)  # T, A: the LM's favourite at each position is the original
    got = comparison.top_alternatives(probs, codes, 1)
    assert got.tolist() == [[[False, False, True, False], [False, False, True, False]]]
    got2 = comparison.top_alternatives(probs, codes, 2)
    assert got2.tolist() == [[[False, True, True, False], [False, True, True, False]]]


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_the_lm_proposer_reads_each_positions_base_distribution(tmp_path, kind):
    import torch
    from gfm_audit.char_lm import char_tokenizer, save_char_causal_lm, save_char_masked_lm
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    if kind == "causal":
        folder = save_char_causal_lm(tmp_path / "lm", hidden=16, layers=1, heads=2, max_positions=64, weights_seed=1)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
    else:
        folder = save_char_masked_lm(tmp_path / "lm", hidden=16, layers=1, heads=2, weights_seed=1)
        model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    tok = char_tokenizer()
    proposer = comparison.LMProposer("lm", model, tok, kind=kind)
    seqs = ["ACGTTGCA", "GGGACTTA"]
    got = proposer(data.encode(seqs))
    assert got.shape == (2, 8, 4)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-6)
    # Independently, for sequence 1 position 5, token by token.
    ids = tok(seqs[1], return_tensors="pt")["input_ids"]
    first = int((ids[0] == tok.convert_tokens_to_ids("G")).nonzero()[0])
    bases = tok.convert_tokens_to_ids(list("ACGT"))
    with torch.no_grad():
        if kind == "causal":
            logits = model(input_ids=ids[:, : first + 5]).logits[0, -1]
        else:
            ids[0, first + 5] = tok.mask_token_id
            logits = model(input_ids=ids).logits[0, first + 5]
    np.testing.assert_allclose(got[1, 5], torch.softmax(logits[bases], -1).numpy(), atol=1e-5)


def test_simplex_projection_matches_a_hand_computed_case_and_keeps_one_hot_vertices():
    import torch

    x = torch.tensor([[0.5, 0.5, 0.2, -0.1], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    got = comparison.project_simplex(x).numpy()
    # Sorted u = x; rho = 3 (u_3 - (u_1+u_2+u_3-1)/3 > 0), theta = 0.2/3.
    np.testing.assert_allclose(got[0], [0.5 - 0.2 / 3, 0.5 - 0.2 / 3, 0.2 - 0.2 / 3, 0.0], atol=1e-6)
    np.testing.assert_allclose(got[1:], [[1, 0, 0, 0], [0, 0, 1, 0]], atol=1e-6)


def test_discretize_gives_bases_keeps_the_largest_margins_and_reverts_edits_until_valid():
    original = "AAAAAAAAAAAAAAAAAAAA"
    codes = data.encode([original])
    relaxed = np.eye(4)[codes]  # (1, 20, 4) one-hot
    # Want G at 2, 5, 9 (margins 0.9, 0.6, 0.3) and C at 12 (0.2); A elsewhere.
    for pos, margin in ((2, 0.9), (5, 0.6), (9, 0.3)):
        relaxed[0, pos] = [(1 - margin) / 2, 0, (1 + margin) / 2, 0]
    relaxed[0, 12] = [0.4, 0.6, 0, 0]
    protected = np.zeros(codes.shape, dtype=bool)
    loose = constraints.Constraints(max_edits=3, gc_tolerance=1.0, protected_motifs=())
    got = data.decode(comparison.discretize(relaxed, codes, protected=protected, constraints=loose))[0]
    assert got == "AAGAAGAAAGAAAAAAAAAA"  # the three largest margins; position 12 dropped by the budget
    tight = constraints.Constraints(max_edits=3, gc_tolerance=0.1, protected_motifs=())  # 2 GC bases at most
    got = data.decode(comparison.discretize(relaxed, codes, protected=protected, constraints=tight))[0]
    assert got == "AAGAAGAAAAAAAAAAAAAA"
    assert set(got) <= set("ACGT")


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # By hand: p = 0.8, z^2/n = 0.38415, centre 0.99207 / 1.38415, half 1.95996 sqrt(0.016 + 0.0096036) / 1.38415.
    [(8, 10, 0.49016, 0.94332), (0, 10, 0.0, 0.27753), (10, 10, 0.72247, 1.0), (50, 100, 0.40383, 0.59617)],
)
def test_robust_accuracy_interval_is_the_wilson_score_interval(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=1e-5)


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    train_csv = _subset_csv(GUE / "dev.csv", tmp / "train.csv", list(range(1500)))
    test_csv = _subset_csv(GUE / "test.csv", tmp / "test.csv", list(range(400, 560)))
    spec = {"kind": "cnn", "num_labels": 2, "channels": 16, "kernel": 9, "batch_size": 512, "seed": 0}
    spec["training"] = {**TRAINING, "epochs": 3}
    train_classifier_stage(
        "cnn",
        spec,
        train_csv=str(train_csv),
        test_csv=str(test_csv),
        non_acgt="skip",
        base_folder=None,
        out_dir=tmp / "clf",
    )
    return spec, tmp


SMALL = {**ATTACK, "n_sequences": 30, "population": 12, "generations": 10, "delta": 0.05}
COMPARE = {"attacks": ["greedy", "lm_proposal", "pgd"], "n_sequences": 30, "top_k": 2, "pgd_steps": 8}


def test_comparison_runs_every_attack_on_the_same_sequences_within_the_budget(small_cnn, tmp_path):
    from gfm_audit.char_lm import save_char_causal_lm

    spec, tmp = small_cnn
    lm = save_char_causal_lm(tmp_path / "lm", hidden=16, layers=1, heads=2, max_positions=400, weights_seed=0)
    out = tmp_path / "comparison.tsv"
    compare_attacks_stage(
        "cnn",
        spec,
        folder=str(tmp / "clf"),
        test_csv=str(tmp / "test.csv"),
        non_acgt="skip",
        attack=SMALL,
        comparison={**COMPARE, "pgd_step_size": 0.2},
        proposal=("lm", {"kind": "causal"}, str(lm)),
        comparison_tsv=str(out),
    )
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == comparison.COMPARISON_COLUMNS
    assert list(dict.fromkeys(table.attack)) == ["ga", "random", "greedy", "lm_proposal", "pgd"]
    assert all(rows.budget.tolist() == [1, 2, 3, 4, 5] for _, rows in table.groupby("attack"))
    assert table.n_attacked.nunique() == 1  # the same attacked sequences for every attack
    # No attack exceeds its budget: a success within budget j has at most j edits.
    assert (table.mean_edits.dropna() <= table.budget[table.mean_edits.notna()]).all()
    for _, rows in table.groupby("attack"):
        assert rows.asr.is_monotonic_increasing
    assert (table.asr > 0).any()


def test_every_reported_row_of_every_attack_stays_within_the_edit_budget(small_cnn):
    spec, tmp = small_cnn
    clf = classifiers.load_classifier("cnn", tmp / "clf", spec)
    test = data.read_labelled_csv(tmp / "test.csv").subset(range(30))
    from gfm_audit.robustness.ga.attack import settings_from_config

    c, p = settings_from_config({**SMALL, "max_edits": 2})
    params = comparison.comparison_params({**COMPARE, "pgd_step_size": 0.5, "attacks": ["greedy", "pgd"]})
    result = comparison.compare_attacks(
        clf, test, constraints=c, ga_params=p, params=params, seed=0, proposer=random_proposer(0)
    )
    assert set(result.results) == {"ga", "random", "greedy", "pgd"}
    originals = data.decode(result.targets.originals)
    for name, res in result.results.items():
        for orig, adv in zip(originals, data.decode(res.adversarial), strict=True):
            assert hamming(orig, adv) <= 2, name
            assert_obeys(orig, adv, c)


def test_an_attack_that_cannot_run_is_skipped_with_its_reason(small_cnn):
    spec, tmp = small_cnn
    clf = classifiers.load_classifier("cnn", tmp / "clf", spec)
    test = data.read_labelled_csv(tmp / "test.csv").subset(range(10))
    from gfm_audit.robustness.ga.attack import settings_from_config

    c, p = settings_from_config(SMALL)
    params = comparison.comparison_params({**COMPARE, "pgd_step_size": 0.2, "attacks": ["lm_proposal"]})
    result = comparison.compare_attacks(clf, test, constraints=c, ga_params=p, params=params, seed=0)
    assert "lm_proposal" not in result.results and "proposal_model" in result.skipped["lm_proposal"]


def test_madry_training_mixes_on_the_fly_adversarial_sequences_into_every_batch(small_cnn):
    spec, tmp = small_cnn
    clf = classifiers.load_classifier("cnn", tmp / "clf", spec)
    train = data.read_labelled_csv(tmp / "train.csv").subset(range(100))
    test = data.read_labelled_csv(tmp / "test.csv")
    from gfm_audit.robustness.ga.attack import settings_from_config

    c, p = settings_from_config({**SMALL, "generations": 3})
    seen: list[np.ndarray] = []
    real_logits = clf.logits

    def logits(codes):
        if clf.model.training:
            seen.append(codes.copy())
        return real_logits(codes)

    clf.logits = logits
    settings_ = {
        "scheme": "madry",
        "iterations": 1,
        "train_sample": 10,
        "holdout": 20,
        "epochs": 1,
        "learning_rate": 5e-4,
        "inner_max_edits": 2,
        "inner_positions": 10,
        "adv_per_batch": 8,
        "seed": 0,
    }
    progress, cost = adversarial_training(
        clf, train, test, constraints=c, params=p, settings=settings_, training={**TRAINING, "batch_size": 32}
    )
    # 100 rows in batches of 32, 32, 32, 4: each batch gets 8, 8, 8, 4 adversarial versions.
    assert [len(b) for b in seen] == [40, 40, 40, 8]
    clean = set(train.sequences)
    for batch, n_clean in zip(seen, (32, 32, 32, 4), strict=True):
        decoded = data.decode(batch)
        assert set(decoded[:n_clean]) <= clean
        for orig, adv in zip(decoded[:8], decoded[n_clean:], strict=False):
            assert hamming(orig, adv) <= 2
            assert_obeys(orig, adv, constraints.Constraints(max_edits=2))
    assert progress.n_adversarial.tolist() == [0, 28]
    assert cost.scheme.tolist() == ["madry", "madry"] and cost.attack_queries.iloc[1] > 28
    assert (cost.robust_ci_low <= cost.robust_accuracy).all() and (cost.robust_accuracy <= cost.robust_ci_high).all()
    assert cost.robust_accuracy.tolist() == progress.robust_accuracy.tolist()


def test_the_per_classifier_table_shows_each_attacks_asr_at_the_full_budget(tmp_path):
    from gfm_audit.robustness.ga.report import attack_table

    def write(name, attacks, budgets, asr, n):
        frame = pd.DataFrame({"attack": attacks, "budget": budgets, "asr": asr, "mean_edits": 1.0})
        frame["mean_queries"], frame["n_attacked"] = 5.0, n
        frame.to_csv(tmp_path / name, sep="\t", index=False)
        return str(tmp_path / name)

    cnn = write("a.tsv", ["ga", "ga", "pgd", "pgd"], [1, 2, 1, 2], [0.1, 0.2, 0.3, 0.4], 10)
    head = write("b.tsv", ["ga", "greedy"], [3, 3], [0.5, 0.6], 7)
    table = attack_table({"cnn": cnn, "head": head})
    assert table.columns.tolist() == ["classifier", "budget", "n_attacked", "ga", "greedy", "pgd"]
    assert table.iloc[0].tolist()[:4] == ["cnn", 2, 10, 0.2] and table.iloc[0].pgd == 0.4
    assert np.isnan(table.iloc[0].greedy) and np.isnan(table.iloc[1].pgd)
    assert table.iloc[1].tolist()[:5] == ["head", 3, 7, 0.5, 0.6]


def test_genoarmorys_published_figures_sit_beside_our_attack_of_the_same_kind_on_each_classifier(tmp_path):
    from gfm_audit.robustness.ga.report import attack_table, published_beside, read_published

    def write(name, attacks, asr, n):
        frame = pd.DataFrame({"attack": attacks, "budget": 5, "asr": asr, "mean_edits": 1.0, "mean_queries": 5.0})
        frame["n_attacked"] = n
        frame.to_csv(tmp_path / name, sep="\t", index=False)
        return str(tmp_path / name)

    paths = {
        "cnn": write("a.tsv", ["ga", "lm_proposal", "pgd"], [0.25, 0.5, 0.75], 8),
        "hyena": write("b.tsv", ["ga", "lm_proposal"], [0.1, 0.2], 4),
    }
    table = attack_table(paths, models={"cnn": "CNN", "hyena": "hyenadna (causal)"})
    assert table.columns.tolist() == ["classifier", "model", "budget", "n_attacked", "ga", "lm_proposal", "pgd"]
    assert table.model.tolist() == ["CNN", "hyenadna (causal)"]
    quoted = pd.DataFrame(
        {
            "model": ["M1", "M2", "M3"],
            "task": ["t", "t", "prom"],
            "attack": ["BERT-Attack", "PGD", "other"],
            "asr": [0.9, 0.3, 0.8],
            "counterpart": ["lm_proposal", "pgd", "none"],
            "note": "",
        }
    )
    beside = published_beside(table, quoted)
    assert beside.columns.tolist() == [
        "GenoArmory model",
        "task",
        "GenoArmory attack",
        "GenoArmory ASR",
        "our attack",
        "ours: cnn",
        "ours: hyena",
    ]
    assert beside["GenoArmory ASR"].tolist() == [0.9, 0.3, 0.8]
    assert beside["ours: cnn"].tolist()[:2] == [0.5, 0.75] and np.isnan(beside["ours: cnn"].iloc[2])
    # PGD did not run on the GFM head: no number beside GenoArmory's.
    assert beside["ours: hyena"].iloc[0] == 0.2 and np.isnan(beside["ours: hyena"].iloc[1:]).all()
    # The bundled file holds GenoArmory's prom_300_all rows: four models x four attacks, each with a counterpart
    # we have (or none); spot values as read from the authors' repository.
    bundled = read_published()
    assert len(bundled) == 16 and set(bundled.task) == {"prom_300_all"}
    assert set(bundled.counterpart) <= {*comparison.ATTACKS, "none"}
    spot = bundled.set_index(["model", "attack"]).asr
    assert spot["DNABERT-2-117M", "BERT-Attack"] == 0.837 and spot["HyenaDNA-small-32k", "PGD"] == 0.2513


def test_a_classifiers_own_sample_size_and_iterations_replace_the_blocks_values():
    from gfm_audit.config import classifier_blocks

    ga = {
        "classifiers": {
            "cnn": {"kind": "cnn"},
            "head": {"kind": "gfm_head", "n_sequences": 7, "adversarial_iterations": 0},
        },
        "attack": {"n_sequences": 200, "max_edits": 5},
        "comparison": {"n_sequences": 40, "top_k": 1},
        "adversarial_training": {"iterations": 3, "holdout": 100, "train_sample": 200},
    }
    cnn, head = classifier_blocks(ga, "cnn"), classifier_blocks(ga, "head")
    assert (cnn["attack"]["n_sequences"], cnn["comparison"]["n_sequences"]) == (200, 40)
    assert (cnn["adversarial_training"]["iterations"], cnn["adversarial_training"]["holdout"]) == (3, 100)
    assert head["attack"] == {"n_sequences": 7, "max_edits": 5} and head["comparison"]["n_sequences"] == 7
    assert head["adversarial_training"] == {"iterations": 0, "holdout": 7, "train_sample": 200, "scheme": "iterative"}
    assert ga["attack"]["n_sequences"] == 200  # the config itself is left alone


def test_each_scheme_runs_with_its_own_settings_and_each_classifier_with_its_own_schemes():
    from gfm_audit.config import classifier_blocks, classifier_schemes

    ga = {
        "classifiers": {
            "cnn": {"kind": "cnn", "adversarial_schemes": ["madry", "iterative", "freelb"]},
            "head": {"kind": "gfm_head", "n_sequences": 7},
        },
        "attack": {"n_sequences": 200},
        "comparison": {"n_sequences": 40},
        "adversarial_training": {
            "scheme": "iterative",
            "compare": ["iterative", "adfar"],
            "epochs": 1,
            "holdout": 100,
            "freelb": {"steps": 3, "epsilon": 1.0},
            "schemes": {"madry": {"epochs": 10, "inner": "hotflip"}, "freelb": {"freelb": {"steps": 2}}},
        },
    }
    assert classifier_schemes(ga, "cnn") == ["madry", "iterative", "freelb"]
    # The block's scheme first, compare after it without repeating it.
    assert classifier_schemes(ga, "head") == ["iterative", "adfar"]
    madry = classifier_blocks(ga, "cnn")["adversarial_training"]  # the classifier's first scheme by default
    assert (madry["scheme"], madry["epochs"], madry["inner"], madry["holdout"]) == ("madry", 10, "hotflip", 100)
    iterative = classifier_blocks(ga, "cnn", "iterative")["adversarial_training"]
    assert (iterative["scheme"], iterative["epochs"]) == ("iterative", 1) and "inner" not in iterative
    # A sub-block entry is laid over the block's key by key; the head's own sample size still applies.
    freelb = classifier_blocks(ga, "head", "freelb")["adversarial_training"]
    assert freelb["freelb"] == {"steps": 2, "epsilon": 1.0} and freelb["holdout"] == 7
    assert ga["adversarial_training"]["freelb"] == {"steps": 3, "epsilon": 1.0}  # the config itself is left alone


def test_on_the_gas_own_sample_the_ga_rows_read_from_summary_equal_a_fresh_run(small_cnn, tmp_path):
    from gfm_audit.robustness.ga.attack import ga_attack_stage

    spec, tmp = small_cnn
    ga_attack_stage(
        "cnn",
        spec,
        folder=str(tmp / "clf"),
        test_csv=str(tmp / "test.csv"),
        non_acgt="skip",
        attack=SMALL,
        adversarial_tsv=tmp_path / "adv.tsv",
        summary_tsv=tmp_path / "sum.tsv",
    )
    tables = []
    for reuse in (True, False):
        out = tmp_path / f"cmp-{reuse}.tsv"
        compare_attacks_stage(
            "cnn",
            spec,
            folder=str(tmp / "clf"),
            test_csv=str(tmp / "test.csv"),
            non_acgt="skip",
            attack=SMALL,
            comparison={**COMPARE, "attacks": ["pgd"], "pgd_step_size": 0.2},
            proposal=None,
            comparison_tsv=str(out),
            summary_tsv=str(tmp_path / "sum.tsv") if reuse else None,
        )
        tables.append(out.read_text())
    assert tables[0] == tables[1]
    assert tables[0].count("\nga\t") == 5 and tables[0].count("\nrandom\t") == 5
