"""Text for chapter 9: templated sentences with known labels, and real English prose.

A real model has no list of true features, but we can at least choose text in which some
concepts are known to be present. Every sentence here is generated from templates and word
lists written for this book (nothing is downloaded, and the text may be redistributed with it):
prose sentences that mention numbers, colours, animals, places, times, food, feelings, jobs,
body parts and negations, and short lines of Python code. A token carries a concept's label
when it belongs to a word of that concept's list (digits count as numbers) or, for `code`,
when it lies in a line of code.

Templated text is too repetitive to train a dictionary of thousands of latents on.
`documentation_prose` adds real English that every Python installation carries: the help
topics of CPython's documentation (`pydoc_data.topics`) and the docstrings of a fixed list
of standard-library modules, cut into passages of whole sentences. It is read from the local
installation (nothing is downloaded), so it depends on the Python version.

Taught in chapter 9 ("Superposition in a real network").
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass

import numpy as np
import torch

from . import _util

__all__ = [
    "WORDS",
    "CONCEPTS",
    "LabelledText",
    "labelled_sentences",
    "token_labels",
    "documentation_prose",
]

# Disjoint word lists (a test checks): a word names one concept, never two.
WORDS = {
    "number": "one two three four five six seven eight nine ten eleven twelve twenty thirty forty"
    " fifty hundred thousand",
    "colour": "red blue green yellow purple black white pink brown grey",
    "animal": "dog cat horse cow sheep lion tiger bird fish mouse rabbit fox wolf bear goat duck",
    "place": "paris london tokyo berlin rome madrid cairo china france spain japan egypt canada"
    " india mexico brazil",
    "time": "monday tuesday wednesday thursday friday saturday sunday january march april june"
    " july august october november december",
    "food": "bread cheese apple rice soup pizza cake butter milk coffee tea sugar honey pasta",
    "emotion": "happy sad angry afraid proud calm nervous glad lonely excited",
    "job": "doctor teacher farmer lawyer nurse pilot baker painter driver singer",
    "body": "hand foot head arm leg eye ear nose knee shoulder finger mouth",
    "negation": "not never no nothing nobody nowhere",
}
WORDS = {concept: tuple(words.split()) for concept, words in WORDS.items()}
CONCEPTS = (*WORDS, "code")

# Fillers that carry no label.
_FILL = {
    "name": "Anna Ben Clara David Elena Farid Grace Hugo Ines Jonas Kira Leo Maya Noor Omar Pia",
    "thing": "box chair book letter lamp window road bridge car garden door table bag ticket",
    "adj": "old small quiet large heavy narrow busy empty new strange",
}
_FILL = {slot: tuple(words.split()) for slot, words in _FILL.items()}

# Prose templates; a slot named after a concept draws a word from its list.
_PROSE = (
    "{name} saw a {colour} {animal} near the {thing} in {place}.",
    "On {time}, the {job} bought {number} loaves of {food}.",
    "The {animal} was {emotion} because nobody fed it {food}.",
    "{name} hurt a {body} while carrying the {adj} {thing} to {place}.",
    "There were {number} {animal}s in the {adj} garden on {time}.",
    "The {job} said that the {colour} {thing} was not for sale.",
    "{name} never drinks {food} after {time}.",
    "My {body} felt {emotion} after {number} hours on the {adj} road.",
    "In {place}, every {job} wears a {colour} coat in {time}.",
    "The {adj} {thing} is not {colour}, it is {colour}.",
    "{name} felt {emotion} when the {animal} touched a {body}.",
    "We have no {food} left, said the {emotion} {job}.",
    "A {colour} {animal} crossed the road in {place} at {number} o'clock.",
    "Nothing in the {adj} {thing} belonged to the {job} from {place}.",
    "{name} raised {number} fingers and pointed at the {colour} {thing}.",
    "The {job} from {place} cooked {food} with {food} on {time}.",
    "Nobody knew why the {animal} was so {emotion} on {time}.",
    "She put {number} spoons of {food} in the {colour} cup.",
    "{name} is a {job} who has never been to {place}.",
    "The {animal} hurt its {body} on the {adj} {thing}.",
    "I do not like {food}, said {name}, who was {emotion}.",
    "Take the {colour} {thing} to the {job} before {time}.",
    "{name} walked {number} miles to {place} with a sore {body}.",
    "The {emotion} {animal} ate the {food} from the {adj} {thing}.",
)
# Code templates: every token of a code line carries the label "code".
_CODE = (
    "for {var} in range({digit}): total += {var}",
    "if {var} > {digit}: return {var} * {digit}",
    "def {fn}({var}): return {var} + {digit}",
    "{var} = [{digit}, {digit}, {digit}]",
    "print({var}.get('{key}', None))",
    "while {var} < {digit}: {var} += 1",
    "{var} = {module}.{fn}({var}, {digit})",
    "return [{var} for {var} in items if {var}]",
    "with open(path) as f: {var} = f.read()",
    "assert len({var}) == {digit}, '{key}'",
)
_CODE_FILL = {
    "var": ("x", "y", "i", "n", "count", "items", "value", "total", "data", "result"),
    "fn": ("load", "parse", "update", "compute", "render", "split", "merge"),
    "module": ("os", "json", "math", "re", "sys"),
    "key": ("size", "mode", "path", "name", "index"),
}

_PROPER = ("place", "time")  # names of places, days and months are capitalised
_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"[A-Za-z]+|\d+")
_CONCEPT_OF = {word: concept for concept, words in WORDS.items() for word in words}


@dataclass
class LabelledText:
    """Texts with labelled character spans: `spans[t]` lists (start, end, concept) of text t."""

    texts: list[str]
    spans: list[list[tuple[int, int, str]]]

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = {c: sum(s[2] == c for spans in self.spans for s in spans) for c in CONCEPTS}
        return f"LabelledText({len(self.texts)} texts, labelled spans {counts})"


def _label(text: str, is_code: bool) -> list[tuple[int, int, str]]:
    spans = [(0, len(text), "code")] if is_code else []
    for match in _WORD.finditer(text):
        word = match.group().lower()
        # plural animals ("dogs") keep their label; the plural s is part of the word
        concept = _CONCEPT_OF.get(word) or _CONCEPT_OF.get(word[:-1] if word.endswith("s") else "")
        if word.isdigit():
            concept = "number"
        if concept:
            spans.append((match.start(), match.end(), concept))
    return spans


def labelled_sentences(n_texts: int, *, code_fraction: float = 0.1, seed: int = 0) -> LabelledText:
    """`n_texts` templated sentences, a `code_fraction` of them lines of Python; same seed, same text."""
    n_texts = _util.size(n_texts, "n_texts")
    code_fraction = _util.number(code_fraction, "code_fraction", low=0, high=1)
    gen = _util.generator(seed)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=gen))]

    texts, spans = [], []
    for _ in range(n_texts):
        is_code = float(torch.rand(1, generator=gen)) < code_fraction
        template = pick(_CODE if is_code else _PROSE)

        def fill(match, is_code=is_code):
            slot = match.group(1)
            if slot == "digit":
                return str(int(torch.randint(100, (1,), generator=gen)))
            words = _CODE_FILL[slot] if is_code else WORDS.get(slot) or _FILL[slot]
            word = pick(words)
            return word.capitalize() if slot in _PROPER else word

        text = _SLOT.sub(fill, template)
        text = text[0].upper() + text[1:] if not is_code else text
        texts.append(text)
        spans.append(_label(text, is_code))
    return LabelledText(texts, spans)


def token_labels(
    corpus: LabelledText, text_index: torch.Tensor | np.ndarray, offsets: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """(tokens, concepts) bool: token j is labelled c when its characters lie in a span of c.

    `text_index` (tokens,) says which text each token comes from, `offsets` (tokens, 2) its
    character span there (as `supersim.real.capture` returns them); columns follow `CONCEPTS`.
    """
    if not isinstance(corpus, LabelledText):
        got = type(corpus).__name__
        raise ValueError(f"corpus must be a LabelledText (from labelled_sentences), got {got}")
    text_index = _util.index_tensor(
        text_index, "text_index", high=len(corpus) - 1, max_dim=1, shape="(tokens,) indices of texts"
    )
    offsets = _util.index_tensor(offsets, "offsets", min_dim=2, max_dim=2, shape="(tokens, 2)")
    if offsets.shape != (len(text_index), 2):
        raise ValueError(
            f"offsets must be (tokens, 2) with tokens={len(text_index)}, got {tuple(offsets.shape)}"
        )
    if bool((offsets[:, 0] > offsets[:, 1]).any()):
        raise ValueError("offsets must be (start, end) character spans with start <= end")
    labels = torch.zeros(len(text_index), len(CONCEPTS), dtype=torch.bool)
    column = {c: i for i, c in enumerate(CONCEPTS)}
    for j, (t, (start, end)) in enumerate(zip(text_index.tolist(), offsets.tolist(), strict=True)):
        for s, e, concept in corpus.spans[t]:
            if s <= start and end <= e and end > start:
                labels[j, column[concept]] = True
    return labels


# Standard-library modules whose docstrings join the documentation topics (importing them has
# no side effects); their module docstring and those of their public functions and classes.
_DOC_MODULES = (
    "argparse",
    "bisect",
    "calendar",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "doctest",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "inspect",
    "itertools",
    "json",
    "logging",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "shutil",
    "statistics",
    "string",
    "subprocess",
    "tempfile",
    "textwrap",
    "threading",
    "unittest",
    "zipfile",
)
_MAX_WORDS = 60  # words per passage: well inside the model's 128 training tokens
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_LETTERS = re.compile(r"[A-Za-z]")


def _documents() -> list[str]:
    """The raw texts, in a fixed order: documentation topics, then docstrings."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - every CPython build ships it
        topics = {}
    docs = [topics[key] for key in sorted(topics)]
    for name in _DOC_MODULES:
        module = importlib.import_module(name)
        members = [module, *(getattr(module, n, None) for n in sorted(getattr(module, "__all__", ())))]
        for member in members:
            doc = inspect.getdoc(member) if callable(member) or member is module else None
            if doc:
                docs.append(doc)
    return docs


def _is_sentences(flat: str) -> bool:
    """Text on one line that reads as sentences: mostly letters, capital to full stop."""
    chars = flat.replace(" ", "")
    return (
        len(flat.split()) >= 8
        and len(_LETTERS.findall(chars)) >= 0.85 * len(chars)
        and flat[0].isupper()
        and flat[-1] in ".!?"
    )


def _is_prose(paragraph: str) -> bool:
    """A paragraph of sentences: no code, tables or headings."""
    lines = paragraph.strip().splitlines()
    if not lines or any(line.lstrip().startswith((">>>", "...", "$", "%", "|", "+--")) for line in lines):
        return False
    return _is_sentences(" ".join(line.strip() for line in lines))


def _passages() -> list[str]:
    """Every distinct prose passage (whole sentences, at most `_MAX_WORDS` words), in order."""
    seen, out = set(), []
    for doc in _documents():
        for paragraph in re.split(r"\n\s*\n", doc):
            if not _is_prose(paragraph):
                continue
            flat = " ".join(paragraph.split())
            passage = []
            for sentence in _SENTENCE_END.split(flat):
                if len(sentence.split()) > _MAX_WORDS:
                    sentence = ""  # a run-on sentence: dropped rather than cut mid-way
                if passage and len(" ".join([*passage, sentence]).split()) > _MAX_WORDS:
                    out.append(" ".join(passage))
                    passage = []
                if sentence:
                    passage.append(sentence)
            if passage:
                out.append(" ".join(passage))
    return [p for p in out if _is_sentences(p) and not (p in seen or seen.add(p))]


def documentation_prose(n_words: int, *, seed: int = 0) -> list[str]:
    """Passages of English prose from Python's own documentation, `n_words` words or a few more.

    The passages (whole sentences, at most 60 words each) come from the help topics of
    CPython's documentation (`pydoc_data.topics`) and the docstrings of a fixed list of
    standard-library modules; paragraphs of code, tables and headings are left out. `seed`
    picks which passages, in which order; they are added until they hold `n_words` words.
    Nothing is downloaded; the text is that of the running Python version.
    """
    n_words = _util.size(n_words, "n_words")
    gen = _util.generator(seed)
    passages = _passages()
    available = sum(len(p.split()) for p in passages)
    if n_words > available:
        raise ValueError(f"n_words must be at most {available} (all the prose there is), got {n_words}")
    out, count = [], 0
    for i in torch.randperm(len(passages), generator=gen).tolist():
        if count >= n_words:
            break
        out.append(passages[i])
        count += len(passages[i].split())
    return out
