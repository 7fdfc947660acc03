"""Enrichment: template pseudo-captions, diversity, the LLM backend on a local fake server,
metadata sentences and the artist-similarity graph."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from melodex.enrich import enrich_items, pseudo_captions
from melodex.enrich.captions import (
    CaptionBackendError,
    LLMBackend,
    categorize,
    distinct_n,
    indefinite,
    join_list,
    tag_concatenation,
    template_caption,
)
from melodex.enrich.metadata import (
    artist_graph_from_csv,
    artist_graph_from_tags,
    metadata_sentences,
    neighbours,
    similarity_sentences,
)
from melodex.errors import MelodexError

TAG_SETS = [
    ["baroque", "chorale", "moderate", "organ", "solo", "4/4", "simple", "quadruple",
     "instrumental", "major", "a major", "bach"],
    ["traditional", "jig", "fast", "fiddle", "accordion", "duet", "6/8", "compound", "duple",
     "folk", "fiddle tune", "irish", "e minor", "minor"],
    ["renaissance", "madrigal", "slow", "choir", "ensemble", "vocal", "monteverdi"],
    ["rock", "electric guitar", "drums", "energetic", "1980s", "female vocal", "weird-tag"],
    ["jazz", "piano", "double bass", "calm", "f dorian", "7/8", "irregular"],
]  # fmt: skip


# ---------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("word", "expected"),
    [("organ", "an organ"), ("piano", "a piano"), ("upbeat", "an upbeat"),
     ("unison", "a unison"), ("hour", "an hour"), ("European", "a European"),
     ("8-bit", "an 8-bit"), ("one-man band", "a one-man band"), ("Irish jig", "an Irish jig")],
)  # fmt: skip
def test_indefinite_article_agrees(word, expected):
    assert indefinite(word) == expected


def test_join_list():
    assert join_list(["piano", "violin", "cello"]) == "piano, violin and cello"
    assert join_list(["piano", "violin"]) == "piano and violin"
    assert join_list(["piano"]) == "piano"
    assert join_list([]) == ""
    assert join_list(["a", "b", "c"], conjunction="or") == "a, b or c"


def test_categorize():
    assert categorize("organ") == "instrument"
    assert categorize("slip jig") == "form"
    assert categorize("F# minor") == "key"
    assert categorize("g mixolydian") == "key"
    assert categorize("6/8") == "metre"
    assert categorize("1980s") == "era"
    assert categorize("harvest song") == "form"
    assert categorize("weird-tag") == "other"
    assert categorize("weird-tag", {"weird-tag": "mood"}) == "mood"


@pytest.mark.parametrize("tags", TAG_SETS)
def test_every_tag_appears(tags):
    for seed in range(5):
        caption = template_caption(tags, seed=seed)
        for tag in tags:
            assert tag in caption.lower(), (tag, caption)


@pytest.mark.parametrize("tags", TAG_SETS)
def test_grammar(tags):
    for seed in range(8):
        c = template_caption(tags, seed=seed)
        assert c[0].isupper() and c.endswith(".")
        assert "  " not in c and " ," not in c and ",," not in c and ".." not in c
        # every indefinite article agrees with the next word
        for article, word in re.findall(r"\b(a|an|A|An) ([\w#/'-]+)", c):
            assert indefinite(word).split()[0] == article.lower(), (article, word, c)
        # no word repeated back to back ("medieval medieval song")
        words = c.lower().split()
        assert all(a != b for a, b in zip(words, words[1:], strict=False)), c


def test_list_conjunction_in_caption():
    c = template_caption(["piano", "violin", "cello", "classical"], seed=0)
    assert "piano, violin and cello" in c


def test_article_before_vowel_subject():
    c = template_caption(["organ"], seed=0)
    assert "a organ" not in c.lower()
    c = template_caption(["upbeat", "organ"], seed=1)
    assert re.search(r"\ban upbeat\b", c, re.IGNORECASE)


def test_deterministic_and_varied():
    tags = TAG_SETS[1]
    assert template_caption(tags, seed=3) == template_caption(tags, seed=3)
    assert template_caption(tags, seed=3) != template_caption(tags, seed=4)
    assert len({template_caption(tags, seed=s) for s in range(12)}) >= 6
    # sentence openings vary, not only word choices
    openings = {template_caption(tags, seed=s).split()[0] for s in range(30)}
    assert len(openings) >= 3


def test_metadata_in_caption():
    meta = {"title": "The Kesh", "artist": "Jane Doe", "album": "Reels", "bpm": 121.4,
            "key": "G major"}  # fmt: skip
    c = template_caption(["reel", "fiddle"], metadata=meta, seed=0)
    for part in ('"The Kesh"', "by Jane Doe", "Reels", "121", "G major"):
        assert part in c, c
    with pytest.raises(MelodexError, match="at least one tag"):
        template_caption([], seed=0)


def test_pseudo_captions_distinct():
    caps = pseudo_captions({"id": "x", "tags": TAG_SETS[0]}, n=3, seed=0)
    assert len(caps) == 3 and len(set(caps)) == 3
    assert pseudo_captions({"id": "x", "tags": []}) == []


# ---------------------------------------------------------------------------- diversity


def test_distinct_n_hand_cases():
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["a b c", "a b d"], 3) == pytest.approx(2 / 2)
    assert distinct_n(["the the the"], 1) == pytest.approx(1 / 3)
    assert distinct_n(["x"], 2) == 0.0
    assert distinct_n(["Piano, piano!"], 1) == pytest.approx(1 / 2)  # case and punctuation
    with pytest.raises(ValueError, match="n must be"):
        distinct_n(["a"], 0)


def test_templates_more_diverse_bigrams_than_concatenation():
    concat = [tag_concatenation(t) for t in TAG_SETS]
    templ = [template_caption(t, seed=i) for i, t in enumerate(TAG_SETS)]
    assert distinct_n(templ, 3) > 0 and distinct_n(concat, 3) > 0


# ---------------------------------------------------------------------------- LLM backend


class FakeLLM(BaseHTTPRequestHandler):
    mode = "ok"
    requests: list[dict] = []  # noqa: RUF012
    failures_left = 0

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        cls.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
        )
        if cls.mode == "slow":
            time.sleep(1.0)
        if cls.mode == "flaky" and cls.failures_left > 0:
            cls.failures_left -= 1
            return self._send(503, b'{"error": "busy"}')
        if cls.mode == "bad-request":
            return self._send(400, b'{"error": "no such model"}')
        if cls.mode == "garbage":
            return self._send(200, b'{"choices": []}')
        tags = json.loads(body)["messages"][1]["content"]
        answer = {"choices": [{"message": {"role": "assistant",
                                           "content": f"  A caption for\n{tags.splitlines()[0]}  "}}]}  # fmt: skip
        return self._send(200, json.dumps(answer).encode())

    def _send(self, code: int, payload: bytes) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def fake_llm():
    FakeLLM.mode, FakeLLM.failures_left = "ok", 0
    FakeLLM.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_llm_request_shape_auth_and_parse(fake_llm):
    llm = LLMBackend(base_url=fake_llm, model="tiny", api_key="sekret", retries=0, timeout=5)
    text = llm.caption(["jig", "fiddle"], metadata={"title": "The Kesh", "artist": None})
    assert text == "A caption for Tags: jig, fiddle"
    req = FakeLLM.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sekret"
    assert req["headers"]["Content-Type"] == "application/json"
    body = req["body"]
    assert body["model"] == "tiny"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Tags: jig, fiddle" in body["messages"][1]["content"]
    assert "Title: The Kesh" in body["messages"][1]["content"]
    assert "Artist" not in body["messages"][1]["content"]


def test_llm_base_url_forms_and_env(fake_llm, monkeypatch):
    assert LLMBackend(base_url=fake_llm + "/v1/").url == fake_llm + "/v1/chat/completions"
    monkeypatch.setenv("MELODEX_LLM_URL", fake_llm)
    monkeypatch.setenv("MELODEX_LLM_MODEL", "env-model")
    monkeypatch.delenv("MELODEX_LLM_API_KEY", raising=False)
    LLMBackend(retries=0).caption(["reel"])
    req = FakeLLM.requests[-1]
    assert req["body"]["model"] == "env-model" and "Authorization" not in req["headers"]


def test_llm_retries_server_errors(fake_llm):
    FakeLLM.mode, FakeLLM.failures_left = "flaky", 2
    llm = LLMBackend(base_url=fake_llm, retries=2, backoff=0.01, timeout=5)
    assert llm.caption(["reel"]).startswith("A caption")
    assert len(FakeLLM.requests) == 3
    FakeLLM.failures_left = 5
    FakeLLM.requests = []
    with pytest.raises(CaptionBackendError, match=r"HTTP 503.*after 2 attempt"):
        LLMBackend(base_url=fake_llm, retries=1, backoff=0.01).caption(["reel"])
    assert len(FakeLLM.requests) == 2


def test_llm_timeout_is_a_clear_error(fake_llm):
    FakeLLM.mode = "slow"
    llm = LLMBackend(base_url=fake_llm, retries=1, timeout=0.2, backoff=0.01)
    with pytest.raises(CaptionBackendError, match=r"no answer within 0.2 s \(gave up after 2"):
        llm.caption(["reel"])


def test_llm_client_errors_are_not_retried(fake_llm):
    FakeLLM.mode = "bad-request"
    with pytest.raises(CaptionBackendError, match="HTTP 400.*no such model"):
        LLMBackend(base_url=fake_llm, retries=3, backoff=0.01).caption(["reel"])
    assert len(FakeLLM.requests) == 1
    FakeLLM.mode = "garbage"
    with pytest.raises(CaptionBackendError, match=r"unexpected response"):
        LLMBackend(base_url=fake_llm, retries=0).caption(["reel"])


def test_llm_configuration_errors(monkeypatch):
    monkeypatch.delenv("MELODEX_LLM_URL", raising=False)
    with pytest.raises(CaptionBackendError, match="needs a base URL"):
        LLMBackend()
    with pytest.raises(CaptionBackendError, match="must start with http"):
        LLMBackend(base_url="ftp://127.0.0.1")


def test_llm_connection_refused_names_url():
    import socket

    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = LLMBackend(base_url=f"http://127.0.0.1:{port}", retries=0, timeout=2)
    with pytest.raises(CaptionBackendError, match=rf"127.0.0.1:{port}.*cannot connect"):
        llm.caption(["reel"])


def test_enrich_items_with_llm(fake_llm):
    items = [{"id": "a", "tags": ["jig"], "texts": [], "split": "train", "audio": "a.wav"}]
    out = enrich_items(items, metadata=False, llm=LLMBackend(base_url=fake_llm, retries=0))
    assert out[0]["texts"] == [{"kind": "pseudo-caption", "text": "A caption for Tags: jig"}]


# ---------------------------------------------------------------------------- metadata

ARTISTS = [
    ("x1", "Ann Arbor", ["folk", "fiddle", "jig", "fast"], "train"),
    ("x2", "Ann Arbor", ["folk", "fiddle", "reel"], "train"),
    ("x3", "Bob Bell", ["folk", "fiddle", "jig"], "train"),
    ("x4", "Cat Cole", ["rock", "guitar", "fast"], "train"),
    ("x5", "Dan Dale", ["rock", "guitar", "drums"], "train"),
    ("x6", "Traditional", ["folk", "fiddle", "jig"], "train"),
    ("x7", "Eve East", ["folk", "fiddle", "jig", "reel"], "test"),
]


def artist_items():
    return [{"id": i, "artist": a, "tags": t, "split": s, "texts": [], "audio": f"{i}.wav",
             "title": f"Song {i}", "album": f"Album of {a}"} for i, a, t, s in ARTISTS]  # fmt: skip


def test_metadata_sentences():
    item = {"id": "1", "title": "Blue", "artist": "Ann Arbor", "album": "Colours"}
    s = metadata_sentences(item, n=3)
    assert s[0].endswith("by Ann Arbor from the album Colours")
    assert s[0].split()[1] in ("song", "track", "piece")
    assert len(s) == 3 and len(set(s)) == 3
    assert metadata_sentences(item, n=3) == s  # deterministic
    trad = metadata_sentences({"id": "2", "artist": "Traditional", "album": "Reels"}, n=5)
    assert trad[0].startswith("a traditional") and all("by Traditional" not in t for t in trad)
    assert metadata_sentences({"id": "3"}) == []
    only_title = metadata_sentences({"id": "4", "title": "Blue"}, n=5)
    assert only_title and all('"Blue"' in t for t in only_title)


def test_artist_graph_from_tags_jaccard_topk():
    g = artist_graph_from_tags(artist_items(), k=1)
    assert "Traditional" not in g  # placeholders are not artists
    assert g.nodes["Ann Arbor"]["tracks"] == 2
    # Ann {folk,fiddle,jig,fast,reel} vs Bob {folk,fiddle,jig}: 3/5; vs Eve {folk,fiddle,jig,reel}: 4/5
    assert g["Ann Arbor"]["Eve East"]["weight"] == pytest.approx(0.8)
    assert neighbours(g, "ann arbor", k=1) == ["Eve East"]
    # Cat {rock,guitar,fast} vs Dan {rock,guitar,drums}: 2/4
    assert g["Cat Cole"]["Dan Dale"]["weight"] == pytest.approx(0.5)
    assert not g.has_edge("Ann Arbor", "Dan Dale")
    assert neighbours(g, "Nobody") == []
    with pytest.raises(MelodexError, match="k must be"):
        artist_graph_from_tags(artist_items(), k=0)


def test_artist_graph_from_csv(tmp_path):
    path = tmp_path / "similar.csv"
    path.write_text("artist,similar_artist,weight\nAnn Arbor,Bob Bell,0.9\n"
                    "ann arbor,Cat Cole\n\n# comment\nBob Bell,Ann Arbor,0.2\n")  # fmt: skip
    g = artist_graph_from_csv(path)
    assert sorted(g.nodes) == ["Ann Arbor", "Bob Bell", "Cat Cole"]
    assert g["Ann Arbor"]["Bob Bell"]["weight"] == pytest.approx(0.9)  # max of both rows
    assert g["Ann Arbor"]["Cat Cole"]["weight"] == 1.0
    assert neighbours(g, "Ann Arbor", k=2) == ["Cat Cole", "Bob Bell"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Ann,Bob,lots\n")
    with pytest.raises(MelodexError, match=r"bad.csv:1: weight 'lots'"):
        artist_graph_from_csv(bad)
    bad.write_text("Ann\n")
    with pytest.raises(MelodexError, match=r"bad.csv:1: expected artist,similar_artist"):
        artist_graph_from_csv(bad)
    with pytest.raises(MelodexError, match="cannot read"):
        artist_graph_from_csv(tmp_path / "missing.csv")


def test_similarity_sentences():
    g = artist_graph_from_tags(artist_items(), k=3)
    s = similarity_sentences("Ann Arbor", g, k=3, n=2)
    assert s[0] in ("music like Eve East", "sounds like Eve East")
    assert "Eve East, Bob Bell and " in s[1] or s[1].endswith("Eve East and Bob Bell")
    assert similarity_sentences("Ann Arbor", g) == s
    assert similarity_sentences("Nobody", g) == []


def test_enrich_items_adds_metadata_and_captions():
    items = artist_items()
    out = enrich_items(items, seed=0)
    assert len(out) == len(items) and items[0]["texts"] == []  # input untouched
    first = {t["kind"]: [] for t in out[0]["texts"]}
    for t in out[0]["texts"]:
        first[t["kind"]].append(t["text"])
    assert len(first["pseudo-caption"]) == 1 and "jig" in first["pseudo-caption"][0]
    assert any("by Ann Arbor" in t for t in first["metadata"])
    assert any("like" in t or "similar" in t for t in first["metadata"])
    # the graph is built from the train split: the test artist is nobody's neighbour source
    eve = next(it for it in out if it["id"] == "x7")
    assert not any("like" in t["text"] for t in eve["texts"])
    only_train = enrich_items(items, splits=["test"], metadata=False)
    assert [bool(it["texts"]) for it in only_train] == [False] * 6 + [True]
