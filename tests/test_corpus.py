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


def test_best_f1_known_answers():
    labels = torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool).unsqueeze(1)
    scores = torch.tensor([
        [5.0, 1.0, 0.0],
        [4.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 1.0, 3.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ])
    f1 = real.best_f1(scores, labels)
    # a perfect detector; one that also fires on two negatives (ties cannot be split):
    # 2*2 / (4 + 2); one that fires only on a negative: its best is calling everything
    assert torch.allclose(f1[0], torch.tensor([1.0, 2 / 3, 2 * 2 / (6 + 2)]))
    with pytest.raises(ValueError, match="every concept at least one positive"):
        real.best_f1(scores, torch.zeros(6, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="with the 3 tokens of scores"):
        real.best_f1(scores[:3], labels)
