"""The labelled corpus of chapter 9 and the best-F1 detector score (no model needed)."""

import pytest
import torch

from supersim import corpus, real


def test_word_lists_are_disjoint_and_concepts_ordered():
    words = [w for ws in corpus.WORDS.values() for w in ws]
    assert len(words) == len(set(words)), "a word must name one concept"
    assert corpus.CONCEPTS == (*corpus.WORDS, "code")


def test_sentences_are_reproducible_and_labelled_spans_are_words_of_their_concept():
    a = corpus.labelled_sentences(300, seed=4)
    assert a.texts == corpus.labelled_sentences(300, seed=4).texts
    assert a.texts != corpus.labelled_sentences(300, seed=5).texts
    n_code = 0
    for text, spans in zip(a.texts, a.spans, strict=True):
        for start, end, concept in spans:
            word = text[start:end].lower()
            if concept == "code":
                n_code += 1
                assert (start, end) == (0, len(text))
            elif concept == "number":
                assert word.isdigit() or word in corpus.WORDS["number"]
            else:
                assert word in corpus.WORDS[concept] or word[:-1] in corpus.WORDS[concept]
    assert 10 < n_code < 60, "about one line in ten is code"
    assert "LabelledText(300 texts" in repr(a)


def test_token_labels_follow_character_spans():
    spans = [[(2, 5, "colour")], [(0, 5, "code"), (4, 5, "number")]]
    text = corpus.LabelledText(["a red fox", "x = 3"], spans)
    offsets = torch.tensor([[0, 1], [2, 5], [6, 9], [0, 1], [2, 3], [4, 5]])
    labels = corpus.token_labels(text, torch.tensor([0, 0, 0, 1, 1, 1]), offsets)
    col = {c: i for i, c in enumerate(corpus.CONCEPTS)}
    assert labels[:, col["colour"]].tolist() == [False, True, False, False, False, False]
    assert labels[:, col["code"]].tolist() == [False, False, False, True, True, True]
    assert labels[:, col["number"]].tolist() == [False] * 5 + [True]
    with pytest.raises(ValueError, match="offsets must be"):
        corpus.token_labels(text, torch.tensor([0]), offsets)


def test_bad_corpus_arguments():
    with pytest.raises(ValueError, match="n_texts"):
        corpus.labelled_sentences(0)
    with pytest.raises(ValueError, match="code_fraction"):
        corpus.labelled_sentences(5, code_fraction=1.5)


def _three_detectors():
    """Six tokens, the first two positive, scored by three detectors: one perfect, one that
    ties the positives with two negatives, one that fires only on a negative."""
    labels = torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool).unsqueeze(1)
    scores = torch.tensor([
        [5.0, 1.0, 0.0],
        [4.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 1.0, 3.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ])
    return labels, scores


def test_best_f1_known_answers():
    labels, scores = _three_detectors()
    f1 = real.best_f1(scores, labels)
    # a perfect detector; one that also fires on two negatives (ties cannot be split):
    # 2*2 / (4 + 2); one that fires only on a negative: its best is calling everything
    assert torch.allclose(f1[0], torch.tensor([1.0, 2 / 3, 2 * 2 / (6 + 2)]))
    with pytest.raises(ValueError, match="every concept at least one positive"):
        real.best_f1(scores, torch.zeros(6, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="with the 3 tokens of scores"):
        real.best_f1(scores[:3], labels)


def test_auroc_known_answers_and_the_pairwise_definition():
    labels, scores = _three_detectors()
    # perfect; positives tie with two of four negatives and beat two: (2 * 0.5 + 2) / 4;
    # positives tie with three negatives and lose to one: 3 * 0.5 / 4
    assert torch.allclose(real.auroc(scores, labels)[0], torch.tensor([1.0, 0.75, 0.375]))
    # against the definition, P(positive > negative) + P(tie) / 2, on random data with ties
    gen = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (40, 7), generator=gen).float()
    lab = torch.rand(40, 3, generator=gen) < 0.3
    want = torch.empty(3, 7)
    for c in range(3):
        pos, neg = s[lab[:, c]], s[~lab[:, c]]  # (p, 7), (q, 7)
        diff = pos[:, None] - neg[None]  # (p, q, 7)
        want[c] = ((diff > 0).float() + (diff == 0).float() / 2).mean((0, 1))
    assert torch.allclose(real.auroc(s, lab, chunk=3), want, atol=1e-6)
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        real.auroc(scores, torch.ones(6, 1, dtype=torch.bool))


def test_documentation_prose_is_reproducible_offline_and_sized(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("documentation_prose must not open a connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    a = corpus.documentation_prose(3000, seed=2)
    assert a == corpus.documentation_prose(3000, seed=2)
    assert a != corpus.documentation_prose(3000, seed=3)
    lengths = [len(p.split()) for p in a]
    # passages are added until they hold the words asked for: the last one overshoots
    assert 3000 <= sum(lengths) < 3000 + 60
    assert all(8 <= n <= 60 for n in lengths)
    assert len(set(a)) == len(a), "no passage twice"
    # the whole of it: tens of thousands of words, enough for chapter 9's budget
    everything = corpus.documentation_prose(20_000, seed=0)
    assert sum(len(p.split()) for p in everything) >= 20_000


def test_documentation_prose_is_english_prose_not_code():
    from collections import Counter

    text = corpus.documentation_prose(5000, seed=0)
    words = Counter(w.lower() for p in text for w in p.split())
    top = {w for w, _ in words.most_common(15)}
    assert {"the", "a", "of", "to", "is"} <= top, f"English function words lead: {top}"
    for p in text:
        assert p[0].isupper() and p[-1] in ".!?", p
        assert ">>>" not in p and "\n" not in p, p
        letters = sum(ch.isalpha() for ch in p.replace(" ", ""))
        assert letters >= 0.85 * len(p.replace(" ", "")), p
    # whole sentences of several words on average, not lists of names
    assert sum(words.values()) / sum(p.count(". ") + 1 for p in text) > 8


def test_documentation_prose_bad_input():
    for bad in (0, -5, 2.5, "100", True):
        with pytest.raises(ValueError, match="n_words"):
            corpus.documentation_prose(bad)
    with pytest.raises(ValueError, match="n_words must be at most"):
        corpus.documentation_prose(10**8)
    with pytest.raises(ValueError, match="seed"):
        corpus.documentation_prose(100, seed=-1)
