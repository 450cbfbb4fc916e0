"""How well a reply classifier reads a labelled corpus: ``python -m shiftd.inbound.intent_eval``.

A corpus is a text file of ``language<TAB>label<TAB>reply`` lines (``#`` starts a comment),
labels being ``accept``, ``decline`` or ``unclear``: what a coordinator would read in the
reply. The report gives, per language and label, how many replies the classifier read as
labelled, and lists every *false claim* (a reply read as accept that is not one) and every
*false decline* (read as decline, not one): the two mistakes that cost a shift or a
caregiver. An unclear reply read as unclear is right; a clear one read as unclear is a miss
that only costs a question back.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..models import Channel
from .intent import Classifier, Intent, load_classifier

LABELS = {"accept": Intent.ACCEPT, "decline": Intent.DECLINE, "unclear": Intent.UNKNOWN}


@dataclass(frozen=True, slots=True)
class Labelled:
    language: str
    label: Intent
    body: str
    line: int


def load_corpus(path: Path) -> list[Labelled]:
    """Every labelled reply in `path`. Raises ValueError naming `file:line` for a bad line."""
    corpus = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in LABELS:
            raise ValueError(
                f"{path}:{number}: expected language<TAB>accept|decline|unclear<TAB>reply"
            )
        corpus.append(Labelled(parts[0], LABELS[parts[1]], parts[2], number))
    return corpus


@dataclass(slots=True)
class Report:
    total: Counter[tuple[str, Intent]] = field(default_factory=Counter)
    right: Counter[tuple[str, Intent]] = field(default_factory=Counter)
    false_claims: list[Labelled] = field(default_factory=list)
    false_declines: list[Labelled] = field(default_factory=list)
    misses: list[tuple[Labelled, Intent]] = field(default_factory=list)

    def recall(self, label: Intent, language: str | None = None) -> float:
        """The share of replies labelled `label` (in `language`, or all) read as labelled."""
        keys = [k for k in self.total if k[1] is label and language in (None, k[0])]
        total = sum(self.total[k] for k in keys)
        return sum(self.right[k] for k in keys) / total if total else 1.0

    def lines(self) -> list[str]:
        out = [f"{'language':<9} {'label':<8} {'right':>6} {'total':>6} {'recall':>7}"]
        for language, label in sorted(
            self.total, key=lambda k: (k[0], list(LABELS.values()).index(k[1]))
        ):
            total, right = self.total[language, label], self.right[language, label]
            out.append(
                f"{language:<9} {_name(label):<8} {right:>6} {total:>6} {right / total:>7.1%}"
            )
        for label in (Intent.ACCEPT, Intent.DECLINE):
            out.append(f"all       {_name(label):<8} recall {self.recall(label):.1%}")
        out.append(
            f"false claims: {len(self.false_claims)}  false declines: {len(self.false_declines)}"
        )
        out += [f"  FALSE CLAIM   line {r.line}: {r.body!r}" for r in self.false_claims]
        out += [f"  FALSE DECLINE line {r.line}: {r.body!r}" for r in self.false_declines]
        out += [
            f"  read as {_name(got)}: line {r.line} ({_name(r.label)}): {r.body!r}"
            for r, got in self.misses
        ]
        return out


def evaluate(classifier: Classifier, corpus: Sequence[Labelled]) -> Report:
    """Classify every reply of `corpus` as a text and count what was read right."""
    report = Report()
    for reply in corpus:
        got = classifier.classify(reply.body, Channel.SMS).intent
        key = (reply.language, reply.label)
        report.total[key] += 1
        if got is reply.label:
            report.right[key] += 1
        elif got is Intent.ACCEPT:
            report.false_claims.append(reply)
        elif got is Intent.DECLINE:
            report.false_declines.append(reply)
        else:
            report.misses.append((reply, got))
    return report


def _name(label: Intent) -> str:
    return "unclear" if label is Intent.UNKNOWN else label.value


DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "replies.tsv"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; exit 1 on any false claim or false decline, 2 on a bad corpus."""
    parser = argparse.ArgumentParser(
        prog="python -m shiftd.inbound.intent_eval", description=__doc__
    )
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--classifier", default="shiftd.inbound.intent:DefaultClassifier")
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.corpus)
        classifier = load_classifier(args.classifier)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = evaluate(classifier, corpus)
    print(f"{len(corpus)} replies from {args.corpus}")
    print("\n".join(report.lines()))
    return 1 if report.false_claims or report.false_declines else 0


if __name__ == "__main__":
    sys.exit(main())
