"""benchmarks/adversarial_page.py: every generated block of the adversarial-training page says what its renderer
makes of the committed TSVs, and a block that does not is named."""

import importlib.util
import shutil

from conftest import REPO

spec = importlib.util.spec_from_file_location("adversarial_page", REPO / "benchmarks" / "adversarial_page.py")
page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(page)


def test_committed_page_blocks_match_what_their_tsvs_render():
    assert page.stale() == []


def test_every_block_of_the_page_has_a_renderer():
    assert set(page.page_blocks(page.PAGE.read_text())) == set(page.BLOCKS)


def test_an_edited_block_is_named_and_the_rewrite_restores_it(tmp_path, capsys):
    copy = tmp_path / "page.md"
    shutil.copy(page.PAGE, copy)
    block = "adversarial-training-deep-tf0-seeds"
    text = copy.read_text()
    body = page.page_blocks(text)[block]
    copy.write_text(text.replace(body, body.replace("Task tf_0, budget 5", "Task tf_0, budget 4"), 1))
    assert page.stale(copy) == [block]
    assert page.main(["--page", str(copy), "--check"]) == 1
    assert block in capsys.readouterr().out
    assert page.main(["--page", str(copy)]) == 0
    assert page.stale(copy) == []
    assert copy.read_text() == page.PAGE.read_text()


def test_a_block_no_renderer_fills_is_listed(tmp_path):
    copy = tmp_path / "page.md"
    copy.write_text(page.PAGE.read_text() + "<!-- typed-by-hand:start -->\n0.42\n<!-- typed-by-hand:end -->\n")
    assert page.stale(copy) == ["typed-by-hand (no renderer)"]
