"""What a caregiver's free-text reply means.

The classifier is pluggable: config names any object with `classify(body, channel)` by its
import path (`classifier: "package.module:Name"`). It must be deterministic and must not
call out to the network: a reply is classified while the caregiver waits.

The default classifier puts safety first. A claim gives away a shift and a decline means
the caregiver is never called about it, so both need an *unambiguous* answer; whatever is
conditional ("yes if I can leave at 3"), a question ("yes? what is this"), contradictory
("yes I can't") or unclear is UNKNOWN, and the caregiver is asked back with the exact words
to reply. See :class:`DefaultClassifier` for the rules, and `make eval` for how well it
reads the labelled corpus in `tests/data/replies.tsv`.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Protocol, runtime_checkable

from ..models import Channel


class Intent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classified:
    intent: Intent
    code: int | None = None  # the offer code in "YES 12", if any


@runtime_checkable
class Classifier(Protocol):
    def classify(self, body: str, channel: Channel) -> Classified: ...


class Sense(Enum):
    """What a word or phrase says about the answer."""

    ACCEPT = "accept"
    DECLINE = "decline"
    DOUBT = "doubt"
    """Makes any answer unclear: if, but, unless, maybe, not sure, si (if)…"""
    LIMIT = "limit"
    """Makes an accept unclear, not a decline: only, until, late, tomorrow…"""
    QUESTION = "question"
    NEGATION = "negation"
    """Makes an accept unclear ("not sure I can", "sure not"); a decline stays one."""
    FILLER = "filler"
    """Says nothing either way: thanks, sorry, ok, hi, I, the…"""
    CONNECTOR = "connector"
    """May stand between an answer and its code: "yes to 12", "sí la 3"."""
    ALONE_ACCEPT = "alone_accept"
    """An accept only when it is the whole answer (with a code): "y", "s"."""
    ALONE_DECLINE = "alone_decline"


Lexicon = Mapping[Sense, tuple[str, ...]]
"""The phrases of one language by what they say. Phrases are written as people type them
and normalised like replies (see `_key`), so "can't" and "cant" are one entry; when phrases
overlap, the longest wins."""

# fmt: off
ENGLISH: Lexicon = {
    Sense.ACCEPT: (
        "yes", "yeah", "yea", "yep", "yup", "yah", "yas", "ye", "yeh", "yse", "ys", "ues",
        "accept", "accepted", "i accept", "sure", "for sure", "sure thing", "of course",
        "ofc", "absolutely", "definitely", "certainly", "count me in", "im in", "i am in",
        "sign me up", "put me down", "put me in", "i will take it", "ill take it",
        "i will take", "ill take", "take it", "i want it", "ill do it", "i will do it",
        "i can", "can do", "i can do it", "i can cover", "i can work", "i can take it",
        "i am available", "im available", "available", "i got it", "ive got it",
        "no problem", "no prob", "np", "works for me", "that works", "sounds good", "on it",
        "im down", "confirm", "confirmed", "will do", "ill be there", "i will be there",
        "be there", "dont mind", "i dont mind", "happy to", "id love to", "i would love to",
        "gladly", "yes please", "yes maam", "i need the hours", "no problemo",
    ),
    Sense.DECLINE: (
        "no", "nope", "nah", "naw", "nay", "nop", "no thanks", "no thank you", "no thx",
        "no ty", "decline", "declined", "i decline", "pass", "ill pass", "i pass",
        "i will pass", "gonna pass", "cant", "i cant", "cannot", "can not", "i cannot",
        "i can not", "wont", "will not", "unable", "not able", "not available",
        "unavailable", "not today", "not this time", "not me", "not really",
        "not interested", "no can do", "count me out", "im out", "busy", "im busy",
        "booked", "already booked", "cant make it", "no way", "not going to", "not gonna",
        "dont think so", "i dont think so", "sick", "im sick", "out of town",
        "have to pass", "gotta pass", "dont want it", "i dont want it", "not for me",
        "no sorry", "sorry no", "absolutely not", "definitely not", "of course not",
        "certainly not", "hell no", "never",
    ),
    Sense.DOUBT: (
        "if", "unless", "but", "maybe", "might", "perhaps", "possibly", "probably",
        "depends", "depending", "not sure", "unsure", "let me check", "let me see",
        "i think", "should be able", "hopefully", "except", "as long as", "provided",
        "could", "would", "idk", "dunno", "i dont know", "dont know", "wait", "hold on",
        "hmm", "hm", "kinda", "sort of", "not yet", "think so", "i guess", "guess",
        "ask", "check",
    ),
    Sense.LIMIT: (
        "only", "just", "until", "till", "til", "after", "before", "late", "later",
        "early", "leave", "half", "part", "partial", "tomorrow", "tonight", "need",
        "instead", "other", "another", "ride", "kids", "by", "at", "from", "pm",
        "hour", "hours", "minutes", "mins", "min", "first", "morning", "evening", "night",
        "weekend", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday", "extra", "pay", "rate", "bonus", "mileage", "or",
    ),
    Sense.QUESTION: (
        "what", "when", "where", "who", "why", "how", "which", "is it", "is this",
        "is that", "is there", "are you", "do you", "does it", "can i", "could i",
        "whats", "wheres", "whos", "hows",
    ),
    Sense.NEGATION: ("not", "dont", "doesnt", "isnt", "didnt", "do not"),
    Sense.FILLER: (
        "ok", "okay", "okey", "k", "kk", "thanks", "thank you", "thank", "thx", "ty", "tks",
        "please", "pls", "plz", "sorry", "so sorry", "im sorry", "hi", "hey", "hello",
        "maybe next time", "next time", "another time", "but thanks", "but thank you",
        "but thx", "maam", "lol", "alright", "all right", "got it", "hun", "dear", "i",
        "im", "a", "the", "it", "that", "this", "shift", "one", "and", "so", "oh", "well",
        "yall", "guys", "you", "today", "me", "my", "will", "do", "be", "am", "is", "thats",
        "great", "good", "cool", "awesome", "perfect", "love", "happy", "text", "msg",
        "again", "really", "sweet", "ma", "sir", "friend", "hon", "there", "too", "also",
        "on", "in", "of", "with", "im good", "all good", "no worries",
    ),
    Sense.CONNECTOR: ("to", "for", "shift", "code", "number", "nr", "offer", "#"),
    Sense.ALONE_ACCEPT: ("y",),
    Sense.ALONE_DECLINE: ("n",),
}

SPANISH: Lexicon = {
    Sense.ACCEPT: (
        "sí", "claro", "claro que si", "claro q si", "claro que sí", "por supuesto",
        "yo la tomo", "la tomo", "lo tomo", "yo lo tomo", "me la quedo", "acepto", "aceptar",
        "dale", "va", "sale", "vale", "listo", "lista", "de acuerdo", "cuenta conmigo",
        "cuentan conmigo", "cuenten conmigo", "puedo", "yo puedo", "si puedo", "con gusto",
        "estoy disponible", "disponible", "ahi estare", "alli estare", "voy", "yo voy",
        "me apunto", "sin problema", "no hay problema", "no hay bronca", "seguro", "obvio",
        "la quiero", "yo la quiero", "acepto el turno",
    ),
    Sense.DECLINE: (
        "no puedo", "hoy no", "hoy no puedo", "no gracias", "paso", "yo paso", "imposible",
        "no estoy disponible", "no disponible", "ocupado", "ocupada", "estoy ocupada",
        "estoy ocupado", "no me es posible", "no voy", "no podre", "no alcanzo",
        "esta vez no", "ahora no", "nel", "no se puede", "no me da tiempo",
        "no tengo tiempo", "enferma", "enfermo", "estoy enferma", "estoy enfermo",
        "no la quiero", "no lo quiero", "rechazo", "declino", "no puedo ir",
        "no me queda", "no esta vez", "claro que no", "por supuesto que no", "para nada",
    ),
    Sense.DOUBT: (
        "pero", "a menos que", "solo si", "depende", "tal vez", "talvez", "quizas", "quiza",
        "a lo mejor", "no se", "no estoy segura", "no estoy seguro", "creo que", "creo",
        "capaz", "puede ser", "dejame ver", "dejame checar", "espera", "mmm", "mm",
        "pregunto", "pregunta", "cuando",
    ),
    Sense.LIMIT: (
        "solo", "nada mas", "hasta", "despues", "antes", "tarde", "temprano", "manana",
        "salir", "llegar", "media", "hora", "horas", "minutos", "noche", "pago", "extra",
        "pasado", "lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo",
        "a las", "o",
    ),
    Sense.QUESTION: (
        "donde", "cual", "quien", "cuanto", "cuanta", "por que",
    ),
    Sense.NEGATION: ("nunca", "tampoco", "ni"),
    Sense.FILLER: (
        "ok", "okey", "gracias", "muchas gracias", "mil gracias", "por favor", "porfa",
        "hola", "buenos dias", "buenas", "buenas tardes", "pues", "bueno", "ya", "lo siento",
        "perdon", "disculpa", "disculpe", "la", "el", "lo", "yo", "me", "de", "a", "que",
        "q", "mi", "hoy", "senora", "amiga", "turno", "el turno", "ese turno", "este turno",
        "esta", "esa", "vez", "con", "en", "y", "otra vez", "la proxima", "otro dia",
        "pero gracias", "tal vez la proxima", "quizas la proxima", "excelente", "bien",
        "muy bien", "genial", "perfecto", "es", "un", "una", "estoy", "ahi", "alli", "para",
        "por", "ese", "este", "hija", "mija", "mijo", "senor",
    ),
    Sense.CONNECTOR: ("la", "el", "turno", "numero", "codigo", "al", "del"),
    Sense.ALONE_ACCEPT: ("s",),
}
# fmt: on

LANGUAGES: tuple[Lexicon, ...] = (ENGLISH, SPANISH)
"""The lexicons the default classifier reads every reply with, whatever the caregiver's
language: a caregiver may answer in either."""

_QUOTES = "'\u2019\u2018`\u00b4"  # straight, curly and accent-key apostrophes
_EMOJI = {
    **dict.fromkeys(
        "\U0001f44d\U0001f44c\u2705\U0001f64b\u2714\u2611\U0001f4af\U0001f919", " yes "
    ),
    **dict.fromkeys("\U0001f44e\u274c\U0001f6ab\U0001f645\u2716\u26d4", " no "),
}
"""Thumbs up, OK hand, check marks, 100, call-me hand read as "yes"; thumbs down, crosses,
no-entry signs as "no". Skin tones and variation selectors are not words and drop out."""
_TOKEN = re.compile(rf"[^\W\d_]+(?:[{_QUOTES}][^\W\d_]+)*|\d+|[?¿]|[,.;:!]|#")
_APOSTROPHE = re.compile(f"[{_QUOTES}]")
_REPEAT = re.compile(r"(.)\1+")
_QUESTION_MARKS = frozenset("?¿")
_BREAKS = frozenset(",.;:!")
_ACCENTED_QUESTIONS = frozenset({"qué", "cuándo", "dónde", "cómo", "cuál", "quién", "cuánto"})
"""Spanish question words: with their accent they ask, even without "¿?"."""
_COURTESY = frozenset({("gracias",), ("muchas", "gracias"), ("por", "favor"), ("porfa",)})
"""What may follow a "si" that means "yes" ("si gracias"), beside an accept or a code."""
_MAX_CODE_DIGITS = 4
_LONGEST_PHRASE = 5
_MAX_OTHER_WORDS_IN_ACCEPT = 4
_MAX_OTHER_WORDS_IN_DECLINE = 10
_NEGATION_REACH = 3
_FUZZY_TARGETS: Mapping[str, Sense] = {
    "accept": Sense.ACCEPT,
    "acepto": Sense.ACCEPT,
    "available": Sense.ACCEPT,
    "absolutely": Sense.ACCEPT,
    "definitely": Sense.ACCEPT,
    "disponible": Sense.ACCEPT,
    "decline": Sense.DECLINE,
    "declino": Sense.DECLINE,
    "unavailable": Sense.DECLINE,
    "cannot": Sense.DECLINE,
    "imposible": Sense.DECLINE,
}
"""Words long enough that one slip of the thumb (a letter added, dropped, swapped or
changed) cannot turn them into another word people text ("except" is two away from
"accept")."""


def _key(word: str) -> str:
    """A word as it is looked up: case-folded, apostrophes and accents dropped, repeated
    letters collapsed ("Yesss" → "yes", "can't" → "cant", "Sííí" → "sí"). The accent of
    "sí" is kept: it is "yes", while "si" may be "if"."""
    word = _APOSTROPHE.sub("", word.casefold())
    plain = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    plain = _REPEAT.sub(r"\1", plain)
    if plain == "si" and "í" in unicodedata.normalize("NFC", word):
        return "sí"
    return plain


def _lexicon(languages: Iterable[Lexicon]) -> dict[tuple[str, ...], Sense]:
    """Every phrase of `languages` → its sense. A phrase two languages read differently keeps
    the first language's sense, unless that is filler or a connector."""
    table: dict[tuple[str, ...], Sense] = {}
    for language in languages:
        for sense, phrases in language.items():
            for phrase in phrases:
                key = tuple(_key(word) for word in phrase.split())
                if key not in table or table[key] in (Sense.FILLER, Sense.CONNECTOR):
                    table[key] = sense
    return table


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "number", "question", "break"
    text: str
    raw: str = ""


def _tokens(body: str) -> list[_Token]:
    text = "".join(_EMOJI.get(c, c) for c in body[:500])
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(unicodedata.normalize("NFC", text)):
        raw = match.group()
        if raw.isdecimal():  # not isdigit: "¹" is a digit int() refuses
            tokens.append(_Token("number", raw))
        elif raw in _QUESTION_MARKS:
            tokens.append(_Token("question", raw))
        elif raw in _BREAKS:
            tokens.append(_Token("break", raw))
        elif raw == "#":
            tokens.append(_Token("word", "#", raw))
        else:
            tokens.append(_Token("word", _key(raw), raw.casefold()))
    return tokens


@dataclass(slots=True)
class _Reading:
    """What the scan of one reply found."""

    accepts: int = 0
    declines: int = 0
    doubts: int = 0
    limits: int = 0
    questions: int = 0
    others: int = 0
    negations: int = 0
    negated_accepts: int = 0
    stray_numbers: int = 0
    code: int | None = None


KEPT = 1024
"""Short replies a `DefaultClassifier` remembers how it read."""
KEPT_LENGTH = 32
"""Replies up to this many characters are remembered; longer ones are read each time."""


class DefaultClassifier:
    """Reads English and Spanish replies, as people text them; safety first.

    ACCEPT needs at least one accepting word or phrase ("yes", "sure", "I'll take it",
    "count me in", "👍", "sí", "claro", "yo la tomo"…) and nothing that doubts, limits,
    contradicts or asks: no decline, no "if"/"but"/"unless"/"maybe", no "only"/"until"/
    "late"/"tomorrow", no question, no negation ("not sure", "sure not"), no number but the
    offer code, and at most a few words it does not know.

    DECLINE needs at least one declining word or phrase ("no", "nope", "can't", "won't",
    "not available", "I'll pass", "👎", "no puedo", "hoy no"…) and no accept, doubt or
    question. "No problem" and "no hay problema" accept; "No sé" (I don't know) doubts.

    Everything else is UNKNOWN. Case, accents, apostrophes ("can't", "cant", curly ones),
    repeated letters ("yesss") and one slip in a long keyword ("acept", "declien") are
    forgiven. "y", "n" and "s" count only as the whole answer ("Y'all I can't" is a
    decline, not a "y"). Spanish "si" without accent is "yes" when it stands alone or before
    another accept, a courtesy or a code, and "if" otherwise.

    The offer code is a number right after the answer ("YES 12", "yes12", "Y #7",
    "yes to 12", "sí la 3") or leading it ("12 yes"). On a call, the keypad digits 1 and 2
    alone mean accept and decline.

    `languages` are the lexicons to read with (English and Spanish by default).
    """

    def __init__(self, languages: Iterable[Lexicon] = LANGUAGES) -> None:
        self._lexicon = _lexicon(languages)
        fuzzy = {_key(word): sense for word, sense in _FUZZY_TARGETS.items()}
        self._fuzzy = {w: s for w, s in fuzzy.items() if self._lexicon.get((w,)) is s}
        # Most replies are a few common words ("YES", "no", "Yes 2"): each is read once, and
        # the last KEPT short ones are remembered (oldest forgotten first).
        self._kept: dict[tuple[str, Channel], Classified] = {}

    def classify(self, body: str, channel: Channel) -> Classified:
        kept = self._kept.get((body, channel))
        if kept is not None:
            return kept
        classified = self._classify(body, channel)
        if len(body) <= KEPT_LENGTH:
            if len(self._kept) >= KEPT:
                del self._kept[next(iter(self._kept))]
            self._kept[body, channel] = classified
        return classified

    def _classify(self, body: str, channel: Channel) -> Classified:
        tokens = _tokens(body)
        if channel is Channel.VOICE and [t.text for t in tokens] in (["1"], ["2"]):
            return Classified(Intent.ACCEPT if tokens[0].text == "1" else Intent.DECLINE)
        reading = self._read(tokens)
        return Classified(_decide(reading), reading.code)

    def _read(self, tokens: list[_Token]) -> _Reading:
        reading = _Reading()
        words = [t for t in tokens if t.kind == "word" and t.text != "#"]
        negated_until = -1
        answer_end = -1  # index just past the last accept/decline: where its code may be
        leading: int | None = None
        for start, end, sense in self._senses(tokens):
            token = tokens[start]
            if token.kind == "number":
                short = len(token.text) <= _MAX_CODE_DIGITS
                if start == 0 and short:
                    leading = int(token.text)
                elif start == answer_end and short and reading.code is None:
                    reading.code = int(token.text)
                elif start == answer_end and not short:
                    pass  # a phone number stuck to the answer: not a code, not a time
                else:
                    reading.stray_numbers += 1
                continue
            if token.kind == "question":
                reading.questions += 1
                continue
            if token.kind == "break":
                negated_until = -1
                if start == answer_end:
                    answer_end = end
                continue
            match sense:
                case Sense.ACCEPT:
                    if start <= negated_until:
                        reading.negated_accepts += 1
                    else:
                        reading.accepts += 1
                    answer_end = end
                case Sense.DECLINE:
                    reading.declines += 1
                    answer_end = end
                case Sense.DOUBT:
                    reading.doubts += 1
                case Sense.LIMIT:
                    reading.limits += 1
                case Sense.QUESTION:
                    reading.questions += 1
                case Sense.NEGATION:
                    reading.negations += 1
                    negated_until = end + _NEGATION_REACH - 1
                case Sense.CONNECTOR:
                    if start == answer_end:
                        answer_end = end
                case Sense.FILLER:
                    pass
                case Sense.ALONE_ACCEPT | Sense.ALONE_DECLINE if len(words) == 1:
                    if sense is Sense.ALONE_ACCEPT:
                        reading.accepts += 1
                    else:
                        reading.declines += 1
                    answer_end = end
                case _:
                    reading.others += 1
        if leading is not None and (reading.accepts or reading.declines):
            if reading.code is None:
                reading.code = leading
            else:
                reading.stray_numbers += 1
        return reading

    def _senses(self, tokens: list[_Token]) -> Iterator[tuple[int, int, Sense | None]]:
        """(start, end, sense) of each token or phrase, longest phrase first."""
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token.kind != "word":
                yield i, i + 1, None
                i += 1
            elif token.text == "si":
                yield i, i + 1, self._si(tokens, i)
                i += 1
            elif token.raw in _ACCENTED_QUESTIONS:
                yield i, i + 1, Sense.QUESTION
                i += 1
            else:
                length, sense = self._phrase_at(tokens, i)
                if sense is None:
                    sense = self._fuzzy_sense(token.text)
                yield i, i + length, sense
                i += length

    def _phrase_at(self, tokens: list[_Token], i: int) -> tuple[int, Sense | None]:
        """The longest phrase starting at `tokens[i]`: (its length, its sense), or (1, None)."""
        for length in range(min(_LONGEST_PHRASE, len(tokens) - i), 0, -1):
            span = tokens[i : i + length]
            if all(t.kind == "word" for t in span):
                sense = self._lexicon.get(tuple(t.text for t in span))
                if sense is not None:
                    return length, sense
        return 1, None

    def _si(self, tokens: list[_Token], i: int) -> Sense:
        """Unaccented "si": "yes" alone, before a pause, a code, a courtesy or another
        accept; "if" before anything else."""
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following is None or following.kind in ("number", "break"):
            return Sense.ACCEPT
        length, sense = self._phrase_at(tokens, i + 1)
        phrase = tuple(t.text for t in tokens[i + 1 : i + 1 + length])
        if sense in (Sense.ACCEPT, Sense.CONNECTOR) or phrase in _COURTESY:
            return Sense.ACCEPT
        return Sense.DOUBT

    def _fuzzy_sense(self, word: str) -> Sense | None:
        if len(word) < 5:
            return None
        for target, sense in self._fuzzy.items():
            if _one_slip(word, target):
                return sense
        return None


def _decide(reading: _Reading) -> Intent:
    if reading.questions or reading.doubts or reading.negated_accepts:
        return Intent.UNKNOWN
    if reading.accepts and reading.declines:
        return Intent.UNKNOWN
    if reading.accepts:
        clear = (
            not reading.limits
            and not reading.negations
            and not reading.stray_numbers
            and reading.others <= _MAX_OTHER_WORDS_IN_ACCEPT
        )
        return Intent.ACCEPT if clear else Intent.UNKNOWN
    if reading.declines and reading.others <= _MAX_OTHER_WORDS_IN_DECLINE:
        return Intent.DECLINE
    return Intent.UNKNOWN


def _one_slip(word: str, target: str) -> bool:
    """Whether `word` is `target` with one letter added, dropped or changed, or two
    neighbours swapped."""
    if abs(len(word) - len(target)) > 1 or word == target:
        return word == target
    if len(word) == len(target):
        diff = [k for k, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == target[diff[1]]
            and word[diff[1]] == target[diff[0]]
        )
    short, long = (word, target) if len(word) < len(target) else (target, word)
    return any(long[:k] + long[k + 1 :] == short for k in range(len(long)))


def load_classifier(path: str) -> Classifier:
    """Instantiate the classifier named `module:Attr`; raises ValueError naming the problem."""
    module_name, _, attr = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot load classifier {path!r}: {exc}") from exc
    try:
        instance = target() if isinstance(target, type) else target
    except Exception as exc:  # a class that needs arguments, or whose __init__ fails
        raise ValueError(f"cannot load classifier {path!r}: {exc}") from exc
    if not isinstance(instance, Classifier) or not callable(instance.classify):
        raise ValueError(f"classifier {path!r} has no classify(body, channel) method")
    return instance
