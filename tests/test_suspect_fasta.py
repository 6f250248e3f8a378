"""A FASTA as dataset inference's suspect set (gfm_audit.privacy.suspect_fasta): how its records become windows,
its bad inputs, and the test's verdict on a tiny real model fitted to some demo windows: a FASTA of member windows
is found trained on, one of held-out non-member windows is not."""

import gzip

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from attack_inputs import save_causal_lm
from conftest import REPO, demo_sequence
from gfm_audit.config import check_consistency, validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.attacks import AttackData, required_features
from gfm_audit.privacy.dataset_inference import score_table_inference
from gfm_audit.privacy.features import read_window_features, reduce_shards
from gfm_audit.privacy.scoring import read_window_ids, score_shard
from gfm_audit.privacy.suspect_fasta import (
    check_apart_from_validation,
    cut_windows,
    suspect_attack_scores,
    suspect_windows,
    write_scoring_inputs,
)

KEY = "dataset_inference.suspect"


def _fasta(path, records):
    path.write_text("".join(f">{name} a description\n{seq}\n" for name, seq in records))
    return path


# --- windows ----------------------------------------------------------------------------------------------------


def test_records_are_tiled_from_their_first_base_and_what_is_left_out_is_counted():
    records = [("a", "ACGTACGTAC"), ("short", "ACG"), ("b", "CCCCCCCCNGGGGGGGGTTTTTTTTA")]
    cut = cut_windows(records, 8, max_n_fraction=0.0, max_windows=100, seed=0)
    # a: [0, 8) and 2 bases left; short: none; b: [0, 8), [8, 16) holds the N (left out), [16, 24), 2 bases left.
    assert cut.windows == {
        "suspect:a:0-8": "ACGTACGT",
        "suspect:b:0-8": "CCCCCCCC",
        "suspect:b:16-24": "GTTTTTTT",
    }
    assert cut.counts == {
        "records": 3,
        "records_shorter_than_window": 1,
        "windows_cut": 4,
        "windows_over_max_n": 1,
        "windows_dropped_over_max_windows": 0,
        "windows_kept": 3,
        "remainder_bases": 4,
        "window_length": 8,
    }
    # One N in 8 bases is within a max_n_fraction of 1/8.
    assert "suspect:b:8-16" in cut_windows(records, 8, max_n_fraction=0.125, max_windows=100, seed=0).windows


def test_above_max_windows_a_seeded_draw_keeps_that_many_in_file_order():
    records = [(f"r{i}", "ACGT" * 4) for i in range(10)]
    first = cut_windows(records, 8, max_n_fraction=0.0, max_windows=5, seed=3)
    assert list(first.windows) == sorted(first.windows, key=lambda w: (int(w.split(":")[1][1:]), w))
    assert len(first.windows) == 5 and first.counts["windows_dropped_over_max_windows"] == 15
    assert first.windows == cut_windows(records, 8, max_n_fraction=0.0, max_windows=5, seed=3).windows
    assert first.windows != cut_windows(records, 8, max_n_fraction=0.0, max_windows=5, seed=4).windows


def test_a_gzipped_fasta_is_read_and_lower_case_bases_are_upper_cased(tmp_path):
    path = tmp_path / "s.fa.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(">x\nacgtacgt\nACGTACGT\n>y\n" + "T" * 32 + "\n")
    cut = suspect_windows(path, 8, max_n_fraction=0.0, max_windows=100, seed=0)
    assert list(cut.windows.values())[:2] == ["ACGTACGT", "ACGTACGT"] and len(cut.windows) == 6


# --- bad inputs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\nworld\n", r"is not a FASTA: line 1 comes before any '>' header"),
        ("", r"holds no FASTA record"),
        ("\n\n", r"holds no FASTA record"),
        (">x\nACGT-ACGT\n", r"line 2 \(record x\) holds '-', not a base"),
        (">\nACGT\n", r"line 1: a header without a name"),
        (">x\nACGT\n>x\nACGT\n", r"records named alike \(x\)"),
    ],
)
def test_a_fasta_that_cannot_be_parsed_or_is_empty_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "suspect.fa"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"^{KEY} .*suspect.fa.*{message}") as error:
        suspect_windows(path, 8, max_n_fraction=0.0, max_windows=100, seed=0)
    assert "\n" not in str(error.value)


def test_a_fasta_without_a_record_as_long_as_a_window_is_refused(tmp_path):
    path = _fasta(tmp_path / "s.fa", [("a", "ACGT"), ("b", "ACGTAC")])
    with pytest.raises(InputError, match=r"none of its 2 records is as long as a window \(8 bp.*the longest has 6 bp"):
        suspect_windows(path, 8, max_n_fraction=0.0, max_windows=100, seed=0)


def test_too_few_suspect_windows_are_refused_with_the_number_needed(tmp_path):
    path = _fasta(tmp_path / "s.fa", [("a", "ACGT" * 6), ("b", "ACGTNNNN")])
    with pytest.raises(InputError, match=r"gives 3 windows of 8 bp \(4 cut, 1 over .*\); .*needs at least 4"):
        suspect_windows(path, 8, max_n_fraction=0.0, max_windows=100, seed=0)


def test_a_suspect_window_identical_to_a_validation_window_is_refused():
    suspect = {"suspect:a:0-8": "acgtacgt", "suspect:a:8-16": "CCCCCCCC"}
    check_apart_from_validation(suspect, {"w1": "GGGGGGGG"}, suspect_key=KEY, validation_name="non_members")
    with pytest.raises(InputError, match=r"1 of its windows are windows of the validation set non_members "):
        check_apart_from_validation(
            suspect, {"w1": "GGGGGGGG", "w2": "ACGTACGT"}, suspect_key=KEY, validation_name="non_members"
        )


# --- the verdict on a model fitted to some windows --------------------------------------------------------------

N_WINDOWS, LENGTH = 64, 64
ATTACKS = ["loss", "zlib", "min_k", "min_k_plus_plus"]


def _score(spec, files, features, out):
    """The scoring job's function on one shard, reduced to windows as the workflow's reduce step does."""
    score_shard(
        spec, **files, features=features, batch_size=8, seed=0, features_path=out / "seq.parquet", progress=False
    )
    reduce_shards([out / "seq.parquet"], out / "windows.parquet")
    return out / "windows.parquet"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """64 demo windows of 64 bp (every 5 kb along z), a tiny character GPT-2 trained on the 32 even ones, their
    per-window features as the workflow computes them, and the attacks' settings (the schema's defaults)."""
    tmp = tmp_path_factory.mktemp("suspect_fasta")
    windows = {f"w{i:02d}": demo_sequence(5000 * (i + 1), 5000 * (i + 1) + LENGTH) for i in range(N_WINDOWS)}
    member = np.array([1, 0] * (N_WINDOWS // 2))
    spec = ModelSpec("tiny", str(save_causal_lm(tmp / "model", max_positions=256)), "causal")
    model, tok = load_model(spec), load_tokenizer(spec)
    x = torch.tensor([tok(s)["input_ids"] for s, m in zip(windows.values(), member, strict=True) if m])
    torch.manual_seed(0)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        optimiser.zero_grad()
        model(x, labels=x).loss.backward()
        optimiser.step()
    model.save_pretrained(tmp / "model")
    demo = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    params = validate_config(demo | {"attacks": {"names": ATTACKS}})["attacks"]
    features = required_features(ATTACKS, params)
    audit = write_scoring_inputs(windows, tmp / "audit")
    (tmp / "audit_out").mkdir()
    table = read_window_features(_score(spec, audit, features, tmp / "audit_out"), list(windows))
    data = AttackData(target="tiny", window_ids=list(windows), member=member, features={"tiny": table}, params=params)
    return tmp, windows, member, spec, features, data


def _verdict(fitted, name, suspect_ids):
    """The suspect row of the test of a FASTA of ``suspect_ids``' windows (one record of them end to end, which
    the tiling cuts back into those windows) against the non-members outside it, as the rule runs it."""
    tmp, windows, member, spec, features, data = fitted
    path = _fasta(tmp / f"{name}.fa", [(name, "".join(windows[w] for w in suspect_ids))])
    cut = suspect_windows(path, LENGTH, max_n_fraction=0.0, max_windows=1000, seed=0)
    assert list(cut.windows.values()) == [windows[w] for w in suspect_ids]
    validation_ids = [w for w, m in zip(windows, member, strict=True) if m == 0 and w not in suspect_ids]
    check_apart_from_validation(
        cut.windows, {w: windows[w] for w in validation_ids}, suspect_key=KEY, validation_name="non_members"
    )
    files = write_scoring_inputs(cut.windows, tmp / name)
    (tmp / f"{name}_out").mkdir()
    ids = read_window_ids(files["windows_fasta"])
    scored = read_window_features(_score(spec, files, features, tmp / f"{name}_out"), ids)
    table, skipped = suspect_attack_scores(data, {"tiny": scored}, ATTACKS)
    assert not skipped and (table.member == -1).sum() == len(suspect_ids)
    # The audit's rows get the scores the attacks give them without the suspect rows (these attacks are per window).
    alone = pd.DataFrame({a: np.asarray(v, float) for n in ATTACKS for a, v in registry_run(data, n).items()})
    pd.testing.assert_frame_equal(
        table[table.member >= 0][alone.columns].reset_index(drop=True), alone, check_exact=True
    )
    validation = table.window_id.isin(validation_ids).to_numpy()
    result, _ = score_table_inference(
        table, (table.member == -1).to_numpy(), validation, names=(str(path), "non_members"), splits=10
    )
    return result.iloc[0]


def registry_run(data, name):
    from gfm_audit.privacy.attacks import registry

    return registry()[name].run(data)


def test_a_fasta_of_member_windows_is_found_trained_on(fitted):
    _, windows, member, *_ = fitted
    members = [w for w, m in zip(windows, member, strict=True) if m == 1][:16]
    row = _verdict(fitted, "members", members)
    assert row.n_suspect == 16 and row.n_validation == 32
    assert row.p_value < 0.01 and row.rejected


def test_a_fasta_of_held_out_non_member_windows_is_not(fitted):
    _, windows, member, *_ = fitted
    held_out = [w for w, m in zip(windows, member, strict=True) if m == 0][:16]
    row = _verdict(fitted, "held_out", held_out)
    assert row.n_suspect == 16 and row.n_validation == 16
    assert not row.rejected


# --- start-up checks --------------------------------------------------------------------------------------------


def _finetune_config(tmp_path, **changes):
    config = {
        "models": {"tiny": {"path": str(tmp_path), "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        "membership": {"mode": "finetune"},
        "dataset_inference": {"enabled": True, "suspect": str(tmp_path / "cohort.fa.gz")},
    }
    for key, value in changes.items():
        config[key] = config.get(key, {}) | value
    return config


def test_a_fasta_suspect_set_is_taken_at_start_up(tmp_path):
    check_consistency(_finetune_config(tmp_path))
    masked = {"tiny": {"path": str(tmp_path), "kind": "masked", "init": "scratch", "masking": "stride"}}
    check_consistency(_finetune_config(tmp_path, models=masked))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scoring": {"context": 100}}, r"is a FASTA, whose sequences have no reference flanks, but scoring.context"),
        (
            {"models": {"tiny": {"path": "m", "kind": "masked", "init": "scratch"}}},
            r"models.tiny is masked with masking: sampled, .*set models.tiny.masking: stride or exact",
        ),
    ],
)
def test_a_fasta_suspect_set_that_could_not_be_scored_like_the_windows_is_refused_at_start_up(
    tmp_path, changes, message
):
    with pytest.raises(InputError, match=message) as error:
        check_consistency(_finetune_config(tmp_path, **changes))
    assert "\n" not in str(error.value)
