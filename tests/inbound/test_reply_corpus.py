"""The default classifier against replies as caregivers really write them
(`tests/data/replies.tsv`, labelled as a coordinator reads them; `make eval` prints the
figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftd.inbound.intent import Classified, DefaultClassifier, Intent
from shiftd.inbound.intent_eval import Report, evaluate, load_corpus, main
from shiftd.models import Channel

CORPUS = load_corpus(Path(__file__).parents[1] / "data" / "replies.tsv")


@pytest.fixture(scope="module")
def report() -> Report:
    return evaluate(DefaultClassifier(), CORPUS)


def test_the_corpus_has_at_least_300_replies_in_english_and_spanish() -> None:
    assert len(CORPUS) >= 300
    for language in ("en", "es"):
        for label in Intent:
            assert sum(1 for r in CORPUS if (r.language, r.label) == (language, label)) >= 30


def test_no_reply_is_read_as_a_claim_it_is_not(report: Report) -> None:
    assert [r.body for r in report.false_claims] == []


def test_no_reply_is_read_as_a_decline_it_is_not(report: Report) -> None:
    assert [r.body for r in report.false_declines] == []


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("label", [Intent.ACCEPT, Intent.DECLINE])
def test_nine_in_ten_clear_answers_are_recognised(
    report: Report, language: str, label: Intent
) -> None:
    assert report.recall(label, language) >= 0.9


def test_eval_prints_recall_per_label_and_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "es        decline" in out and "en        accept" in out
    assert "false claims: 0  false declines: 0" in out


def test_a_classifier_that_claims_everything_is_caught() -> None:
    class YesToAll:
        def classify(self, body: str, channel: Channel) -> Classified:
            return Classified(Intent.ACCEPT)

    report = evaluate(YesToAll(), [r for r in CORPUS if r.label is not Intent.ACCEPT])
    assert report.false_claims and not report.false_declines
    assert any("FALSE CLAIM" in line for line in report.lines())


def test_a_corpus_line_without_a_label_is_named(tmp_path: Path) -> None:
    corpus = tmp_path / "c.tsv"
    corpus.write_text("# comment\nen\tmaybe\tyes\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"c.tsv:2: expected"):
        load_corpus(corpus)
