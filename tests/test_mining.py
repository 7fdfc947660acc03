"""Mining music descriptions: sources, span format, token/span mapping, metrics, miners."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from melodex.errors import MelodexError
from melodex.mining.sources import (
    candidates,
    clean_wikitext,
    find_audio_references,
    find_candidates,
    mine_records,
    read_documents,
)
from melodex.mining.spans import (
    Annotation,
    Span,
    evaluate_spans,
    load_packaged_annotations,
    merge_token_spans,
    parse_markup,
    read_annotations,
    split_annotations,
    to_markup,
    token_labels,
    word_tokens,
)
from melodex.mining.vocab import match_aspects, sentence_spans, weak_annotations

pytestmark = pytest.mark.heavy  # fine-tunes the packaged MiniLM

# ------------------------------------------------------------------------------ sources

WIKI = textwrap.dedent(
    """\
    {{Infobox song|name=Moonlight Air|genre=[[Folk music|Folk]]}}
    '''"Moonlight Air"''' is a [[folk song]] from [[Cornwall]].<ref>{{cite book|title=S}}</ref> \
It is sung [[a cappella|unaccompanied]] at a slow tempo.
    [[File:Moonlight_air.ogg|thumb|right|upright=1.2|A 1952 recording by [[Jane Doe]], sung slowly]]
    == History ==
    The song was first printed in 1890.<ref name="x"/> {{lang|kw|Kan an loer}} is its name.
    {{Listen|filename=Air (choir).flac|title=Choir version|description=A choir sings in four parts\
|filename2=Air_2.oga|title2=Harp}}
    <gallery>
    File:Air_fiddle.mp3|The tune on [[fiddle]]
    File:Cornwall.jpg|A map
    </gallery>
    [[Category:Cornish songs]]
    {| class="wikitable"
    | a || b
    |}
    """
)
WIKI_PAGE = (
    '"Moonlight Air" is a folk song from Cornwall. It is sung unaccompanied at a slow tempo.\n'
    "The song was first printed in 1890. Kan an loer is its name."
)

HTML = """<html><head><title>Harbour Song - Wiki</title><style>p{}</style></head><body>
<h1>Harbour Song</h1>
<p>The <b>Harbour Song</b> is a shanty with a rolling rhythm.</p>
<figure><audio controls><source src="/media/Harbour_song.ogg"><source src="/media/Harbour_song.mp3">
</audio><figcaption>A crew sings it with <i>call-and-response</i> verses.</figcaption></figure>
<p>It was collected in 1911.</p>
<audio src="extra%20take.wav" title="A solo concertina version"></audio>
<a href="https://example.org/files/Shanty.mid">MIDI</a>
<script>var x = "a.ogg";</script>
</body></html>"""

TEXT = """The waltz is played on accordion.

Audio: waltz_take1.ogg - a brisk accordion waltz in three-four time
waltz_take2.opus
A slower take with guitar.

It was recorded in 1970.
"""

XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">
<page><title>Reel of Tulloch</title><ns>0</ns><id>42</id>
<revision><id>7</id><text xml:space="preserve">The '''reel''' is [[Scottish dance|danced]] fast.
[[Image:Reel.wav|thumb|Pipes play the reel]]</text></revision></page>
<page><title>Empty</title><id>43</id><revision><text>No audio here.</text></revision></page>
</mediawiki>"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "Moonlight_Air.wiki").write_text(WIKI, encoding="utf-8")
    (tmp_path / "song.html").write_text(HTML, encoding="utf-8")
    (tmp_path / "notes.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "dump.xml").write_text(XML, encoding="utf-8")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    return tmp_path


def _pairs(path: Path) -> list[tuple[str, str, str]]:
    return [(c.audio, c.kind, c.text) for c in candidates(read_documents(path))]


def test_wikitext_pairs(docs: Path) -> None:
    assert _pairs(docs / "Moonlight_Air.wiki") == [
        ("Moonlight air.ogg", "caption", "A 1952 recording by Jane Doe, sung slowly"),
        ("Moonlight air.ogg", "page", WIKI_PAGE),
        ("Air (choir).flac", "caption", "Choir version: A choir sings in four parts"),
        ("Air (choir).flac", "page", WIKI_PAGE),
        ("Air 2.oga", "caption", "Harp"),
        ("Air 2.oga", "page", WIKI_PAGE),
        ("Air fiddle.mp3", "caption", "The tune on fiddle"),
        ("Air fiddle.mp3", "page", WIKI_PAGE),
    ]


def test_html_pairs(docs: Path) -> None:
    page = "The Harbour Song is a shanty with a rolling rhythm.\nIt was collected in 1911.\nMIDI"
    assert _pairs(docs / "song.html") == [
        ("Harbour_song.ogg", "caption", "A crew sings it with call-and-response verses."),
        ("Harbour_song.ogg", "page", page),
        ("extra take.wav", "caption", "A solo concertina version"),
        ("extra take.wav", "page", page),
        ("Shanty.mid", "page", page),
    ]
    assert read_documents(docs / "song.html")[0].title == "Harbour Song"


def test_text_pairs(docs: Path) -> None:
    page = "The waltz is played on accordion.\nIt was recorded in 1970."
    assert _pairs(docs / "notes.txt") == [
        ("waltz_take1.ogg", "caption", "a brisk accordion waltz in three-four time"),
        ("waltz_take1.ogg", "page", page),
        ("waltz_take2.opus", "caption", "A slower take with guitar."),
        ("waltz_take2.opus", "page", page),
    ]


def test_xml_dump_pages(docs: Path) -> None:
    pages = read_documents(docs / "dump.xml")
    assert [(d.page, d.title) for d in pages] == [("42", "Reel of Tulloch"), ("43", "Empty")]
    assert _pairs(docs / "dump.xml") == [
        ("Reel.wav", "caption", "Pipes play the reel"),
        ("Reel.wav", "page", "The reel is danced fast."),
    ]


def test_records_are_manifest_like(docs: Path) -> None:
    from melodex.data.manifest import read_manifest, write_manifest

    records = mine_records(docs)
    assert len(find_candidates(docs)) == 8 + 5 + 4 + 2
    assert len(records) == 4 + 3 + 2 + 1
    first = records[0]
    assert first["id"] == "Moonlight_Air/Moonlight air.ogg"
    assert first["audio"] == "Moonlight air.ogg"
    assert first["texts"] == [
        {"kind": "mined", "text": "A 1952 recording by Jane Doe, sung slowly", "source": "caption"},
        {"kind": "mined", "text": WIKI_PAGE, "source": "page"},
    ]
    assert first["extra"]["page"] == "Moonlight_Air"
    assert first["extra"]["source"].endswith("Moonlight_Air.wiki")
    path = write_manifest(docs / "out" / "m.jsonl", records)
    assert len(read_manifest(path, check_audio=False)) == len(records)


def test_find_audio_references() -> None:
    text = "See Foo_bar.ogg, x.OGA and https://a.org/w/Song.flac; not file.ogg2 or pic.jpg. a.mid"
    assert find_audio_references(text) == ["Foo_bar.ogg", "x.OGA", "Song.flac", "a.mid"]
    spaced = find_audio_references("Listen to Moonlight air.ogg now", spaces=True)
    assert spaced == ["Listen to Moonlight air.ogg"]  # documented over-reach with spaces=True
    assert find_audio_references("t.wav t.wav t.opus t.mp3") == ["t.wav", "t.opus", "t.mp3"]


def test_clean_wikitext() -> None:
    wt = "A [[B|c]] {{d|{{e}}}}'''f'''<!-- g -->[https://h.org i] [[Category:J]]<ref>k</ref>."
    assert clean_wikitext(wt) == "A c fi."
    assert clean_wikitext("* item one\n\n== Head ==\n# two") == "item one\ntwo"


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(MelodexError, match="not a folder"):
        mine_records(tmp_path / "nope")


# ------------------------------------------------------------------------------ span format


def _write(path: Path, *objs: object) -> Path:
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    return path


def test_read_annotations_ok(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.jsonl",
        {"text": "A slow song. Born 1950.", "sentences": [[0, 12]], "aspects": [[2, 11]], "id": 1},
    )
    (ann,) = read_annotations(path)
    assert ann.sentences == [(0, 12)] and ann.aspects == [(2, 11)] and ann.extra == {"id": 1}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"text": "abc", "sentences": [[0, 4]]},
            r"a\.jsonl:2: sentences\[0\] = \[0, 4\] is out of range",
        ),
        ({"text": "abc", "aspects": [[2, 1]]}, r":2: aspects\[0\] = \[2, 1\] is out of range"),
        (
            {"text": "abcdef", "aspects": [[0, 3], [2, 5]]},
            r":2: aspects\[0\] = \[0, 3\] overlaps aspects\[1\]",
        ),
        ({"text": "ab cd", "sentences": [[0, 3]]}, r":2: .*starts or ends with whitespace"),
        ({"text": "abc", "aspects": [[0]]}, r":2: aspects\[0\] must be a pair of integers"),
        ({"text": ""}, r":2: 'text' must be a non-empty string"),
        ({"text": "abc", "sentences": "x"}, r":2: 'sentences' must be a list"),
    ],
)
def test_read_annotations_errors(tmp_path: Path, record: dict, message: str) -> None:
    path = _write(tmp_path / "a.jsonl", {"text": "fine"}, record)
    with pytest.raises(MelodexError, match=message):
        read_annotations(path)


def test_read_annotations_bad_json_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "ok"}\n\n{oops\n', encoding="utf-8")
    with pytest.raises(MelodexError, match=r"a\.jsonl:3: invalid JSON"):
        read_annotations(path)
    with pytest.raises(MelodexError, match="not found"):
        read_annotations(tmp_path / "none.jsonl")


def test_markup_round_trip() -> None:
    marked = "It charted. <<A [slow ballad] with [piano].>> Born [1950]?"
    ann = parse_markup(marked)
    assert ann.text == "It charted. A slow ballad with piano. Born 1950?"
    assert ann.sentences == [(12, 37)]
    assert [ann.text[s:e] for s, e in ann.aspects] == ["slow ballad", "piano", "1950"]
    assert to_markup(ann) == marked
    with pytest.raises(MelodexError, match="unbalanced"):
        parse_markup("a ]b[")


def test_packaged_annotations_and_split() -> None:
    anns = load_packaged_annotations()
    assert len(anns) >= 120
    assert sum(1 for a in anns if a.sentences) >= 100
    assert sum(1 for a in anns if not a.sentences) >= 20  # non-music paragraphs
    train, test = split_annotations(anns)
    assert len(train) + len(test) == len(anns)
    assert {a.text for a in test} == {a.text for a in split_annotations(anns[::-1])[1]}
    assert 0.1 < len(test) / len(anns) < 0.3


# ------------------------------------------------------------------------------ tokens and spans


def test_token_labels() -> None:
    #            [CLS]   "slow" "tem" "##po" "."   [SEP]
    offsets = [(0, 0), (0, 4), (5, 8), (8, 10), (10, 11), (0, 0)]
    assert token_labels(offsets, [(0, 10)]) == [-100, 1, 1, 1, 0, -100]
    assert token_labels(offsets, [(5, 10)]) == [-100, 0, 1, 1, 0, -100]
    assert token_labels(offsets, []) == [-100, 0, 0, 0, 0, -100]


def test_merge_token_spans_hand_cases() -> None:
    text = "heavy distorted guitars, slow tempo"
    # tokens: heavy | dis ##tor ##ted | guitars | , | slow | tempo
    offsets = [(0, 0), (0, 5), (6, 9), (9, 12), (12, 15), (16, 23), (23, 24), (25, 29), (30, 35)]
    word_ids = [None, 0, 1, 1, 1, 2, 3, 4, 5]
    probs = [0.9, 0.2, 0.8, 0.1, 0.3, 0.9, 0.4, 0.7, 0.9]
    spans = merge_token_spans(text, offsets, probs, word_ids=word_ids)
    # "dis" is positive, so the whole word joins, up to the end of "guitars"
    assert spans == [
        Span(6, 23, "distorted guitars", round((0.8 + 0.1 + 0.3 + 0.9) / 4, 4)),
        Span(25, 35, "slow tempo", 0.8),
    ]
    # without word ids every token is a word: sub-word spans can appear
    spans = merge_token_spans(text, offsets, probs)
    assert [s.text for s in spans] == ["dis", "guitars", "slow tempo"]
    assert merge_token_spans(text, offsets, probs, word_ids=word_ids, threshold=0.95) == []
    assert merge_token_spans("", [(0, 0)], [0.9]) == []


def test_offsets_with_the_real_fast_tokenizer() -> None:
    from transformers import AutoTokenizer

    from melodex.mining.extract import resolve_backbone

    tok = AutoTokenizer.from_pretrained(resolve_backbone(None), use_fast=True)
    text = "Thunderous timpani rolls, then silence."
    enc = tok(text, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    spans = [(0, 24)]
    labels = token_labels(offsets, spans)
    probs = [float(lab == 1) for lab in labels]
    merged = merge_token_spans(text, offsets, probs, word_ids=enc.word_ids())
    assert [(s.start, s.end, s.text) for s in merged] == [(0, 24, "Thunderous timpani rolls")]
    assert "".join(text[s:e] for s, e in offsets if e > s).replace(" ", "") == text.replace(" ", "")


# ------------------------------------------------------------------------------ metrics


def test_word_tokens() -> None:
    assert word_tokens("a slow-ish, bb.") == [
        (0, 1),
        (2, 6),
        (6, 7),
        (7, 10),
        (10, 11),
        (12, 14),
        (14, 15),
    ]


def test_evaluate_spans_hand_computed() -> None:
    #        0123456789012345678901234
    text1 = "aa bb cc dd ee ff gg"  # tokens at 0,3,6,9,12,15,18
    text2 = "xx yy"
    gold = [[(0, 5), (9, 14)], [(0, 2)]]
    pred = [[(0, 5), (12, 20)], []]
    m = evaluate_spans([text1, text2], gold, pred)
    # tokens: gold {aa,bb,dd,ee, xx}; pred {aa,bb,ee,ff,gg}: tp 3, fp 2, fn 2
    assert m["token"]["tp"] == 3 and m["token"]["fp"] == 2 and m["token"]["fn"] == 2
    assert m["token"]["precision"] == pytest.approx(3 / 5)
    assert m["token"]["recall"] == pytest.approx(3 / 5)
    assert m["token"]["f1"] == pytest.approx(3 / 5)
    # exact: (0,5) matches; (12,20) wrong; gold (9,14), (0,2) missed: P 1/2, R 1/3
    assert m["span_exact"]["precision"] == pytest.approx(1 / 2)
    assert m["span_exact"]["recall"] == pytest.approx(1 / 3)
    assert m["span_exact"]["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    # overlap: both predictions overlap gold (P 1); gold overlapped: 2 of 3 (R 2/3)
    assert m["span_overlap"]["precision"] == pytest.approx(1.0)
    assert m["span_overlap"]["recall"] == pytest.approx(2 / 3)
    assert m["span_overlap"]["f1"] == pytest.approx(0.8)
    empty = evaluate_spans(["ab"], [[]], [[]])
    assert empty["token"]["f1"] == 0.0 and empty["span_exact"]["precision"] == 0.0
    with pytest.raises(MelodexError, match="outside text"):
        evaluate_spans(["ab"], [[(0, 3)]], [[]])
    with pytest.raises(MelodexError, match="differ in length"):
        evaluate_spans(["ab"], [], [[]])
    same = evaluate_spans([text1], [[Span(0, 5, "aa bb")]], [[(0, 5)]])
    assert all(same[k]["f1"] == 1.0 for k in same)


# ------------------------------------------------------------------------------ vocabularies


def test_vocab_matches_and_weak_labels() -> None:
    text = "The track has distorted guitars and a slow tempo. It was released in 1990."
    assert [text[s:e] for s, e in match_aspects(text)] == ["distorted guitars", "slow tempo"]
    (weak,) = weak_annotations([text])
    assert weak.sentences == [sentence_spans(text)[0]]
    assert weak.aspects == match_aspects(text)
    # the documented precision risk: no context
    assert match_aspects("We met at the opera house.") == [(14, 25)]


# ------------------------------------------------------------------------------ miners


def _sentence_annotations(anns: list[Annotation]) -> list[Annotation]:
    """One annotation per sentence (whole-sentence label or none)."""
    out = []
    for a in anns:
        for s, e in sentence_spans(a.text):
            gold = [(0, e - s)] if (s, e) in a.sentences else []
            out.append(Annotation(a.text[s:e], gold, []))
    return out


@pytest.fixture(scope="module")
def tiny_miner(tmp_path_factory: pytest.TempPathFactory):
    from melodex.mining.extract import MinerConfig, SpanExtractor, fit

    train, test = split_annotations(load_packaged_annotations())
    train_s = _sentence_annotations(train)
    pos = [a for a in train_s if a.sentences][:20]
    neg = [a for a in train_s if not a.sentences][:20]
    config = MinerConfig(
        task="sentences", max_length=64, stride=16, epochs=2, lr=2e-4, batch_size=8
    )
    miner = SpanExtractor.new(config)
    losses = fit(miner, [*pos, *neg])
    folder = miner.save(tmp_path_factory.mktemp("miner"))
    return miner, folder, losses, _sentence_annotations(test)


def test_tiny_training_beats_trivial_baseline(tiny_miner) -> None:
    from melodex.mining.extract import evaluate_miner, trivial_baseline

    miner, _, losses, held_out = tiny_miner
    assert losses[-1] < losses[0]
    metrics = evaluate_miner(miner, held_out)
    baseline = trivial_baseline(held_out, "sentences")  # mark every sentence
    assert metrics["token"]["f1"] > baseline["token"]["f1"]
    assert metrics["span_exact"]["f1"] > baseline["span_exact"]["f1"]


def test_saved_miner_round_trip_and_mining(tiny_miner, docs: Path, tmp_path: Path) -> None:
    from melodex.mining.extract import SpanExtractor, mine_manifest_records

    miner, folder, _, held_out = tiny_miner
    loaded = SpanExtractor.load(folder)
    assert loaded.task == "sentences" and loaded.config.max_length == 64
    texts = [a.text for a in held_out[:6]]
    assert loaded.extract(texts) == miner.extract(texts)
    long_text = " ".join(texts * 4)  # several windows
    (spans,) = loaded.extract([long_text])
    assert all(long_text[s.start : s.end] == s.text for s in spans)
    mined = mine_manifest_records(mine_records(docs), [loaded], threshold=0.0)
    assert all(t["kind"] == "mined" and t["task"] == "sentences" for r in mined for t in r["texts"])
    assert any(r["texts"] for r in mined)

    from melodex.cli import main

    out = tmp_path / "mined.jsonl"
    args = ["mine", "extract", str(docs), "--model", str(folder), "--out", str(out)]
    with pytest.raises(SystemExit) as done:
        main([*args, "--threshold", "0"])
    assert done.value.code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines and lines[0]["texts"][0]["source"] in ("caption", "page")


def test_load_rejects_non_miner(tmp_path: Path) -> None:
    from melodex.errors import ModelLoadError
    from melodex.mining.extract import MinerConfig, SpanExtractor

    with pytest.raises(ModelLoadError, match="not a melodex miner"):
        SpanExtractor.load(tmp_path)
    with pytest.raises(MelodexError, match="unknown mining task"):
        MinerConfig(task="chords")


@pytest.mark.slow
@pytest.mark.parametrize(("task", "floor"), [("sentences", 0.8), ("aspects", 0.5)])
def test_full_training(task: str, floor: float, tmp_path: Path) -> None:
    from melodex.cli import main

    with pytest.raises(SystemExit) as done:
        main(["mine", "train", "--task", task, "--out", str(tmp_path / task), "--json"])
    assert done.value.code == 0
    meta = json.loads((tmp_path / task / "melodex_miner.json").read_text())
    assert meta["metrics"]["token"]["f1"] > floor
    assert meta["metrics"]["span_overlap"]["f1"] > floor
