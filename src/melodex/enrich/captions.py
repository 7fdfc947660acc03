"""Pseudo-captions from tags (TTMR++): a seeded template grammar, or an LLM behind an
OpenAI-compatible endpoint.

TTMR++ turns tag lists into fluent captions with a fine-tuned LLM. Offline, melodex does the same
with a small grammar; an LLM backend can be plugged in (off by default, see :class:`LLMBackend`).

The tag lexicon
---------------
Each tag is put in one *slot category* by :func:`categorize`: an exact match in :data:`LEXICON`
first, then a pattern rule (``"4/4"`` -> ``metre``; ``"a major"``/``"f# minor"`` -> ``key``;
``"1970s"`` -> ``era``; ``"... song"``/``"... tune"`` -> ``form``), else ``other``.

=============  ===========================================  =====================================
category       examples                                     how it is written
=============  ===========================================  =====================================
tempo          slow, moderate, fast, upbeat                 adjective of the subject ("a slow ...")
mood           calm, sad, happy, melancholic, energetic     adjective or "with a calm mood"
era            baroque, renaissance, medieval, 1980s        adjective ("a baroque chorale")
region         irish, german, latin                         adjective, capitalised ("an Irish jig")
genre          rock, jazz, folk, classical, traditional     adjective / "in a folk style"
form           chorale, reel, jig, madrigal, fiddle tune    the head noun ("... chorale")
instrument     piano, violin, strings, choir, guitar        "played on piano, violin and cello"
ensemble       solo, duet, ensemble, orchestra              "a solo performance", "as a duet"
voice          vocal, instrumental, male vocal              adjective ("an instrumental ...")
key            a major, f# minor                            "in A major" (note letter capitalised)
mode           major, minor, dorian                         "in a major key", "in the dorian mode"
metre          4/4, 6/8                                     "in 4/4 time"
metre-type     simple, compound, duple, triple, quadruple   "in simple quadruple metre"
composer       bach, palestrina, mozart                     "in the manner of Bach"
other          anything else                                "with hints of X" / "tagged X"
=============  ===========================================  =====================================

Every tag given to :func:`template_caption` appears in its caption (case-insensitive) - nothing is
silently dropped. Tag order is a priority: the first form is the head noun ("a jig"), the
first tempo and mood become adjectives, later ones go to clauses. The grammar picks one of several sentence plans, synonyms for the head noun
and verbs, and shuffles secondary clauses, all from ``random.Random(seed + tags + title)``, so a
caption is a pure function of its inputs. Lists use "a, b and c"; indefinite articles agree with
the next word (:func:`indefinite`).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from melodex.errors import MelodexError, ParameterError

__all__ = [
    "CATEGORIES",
    "LEXICON",
    "CaptionBackendError",
    "LLMBackend",
    "categorize",
    "distinct_n",
    "indefinite",
    "join_list",
    "ngram_counts",
    "tag_concatenation",
    "template_caption",
]

CATEGORIES = ("tempo", "mood", "era", "region", "genre", "form", "instrument", "ensemble",
              "voice", "key", "mode", "metre", "metre-type", "composer", "other")  # fmt: skip

_WORDS: dict[str, str] = {
    "tempo": "slow moderate fast upbeat downtempo uptempo mid-tempo lively brisk",
    "mood": "calm sad happy melancholic melancholy energetic peaceful dark bright joyful "
    "romantic aggressive dreamy relaxing relaxed uplifting tense epic playful solemn "
    "mellow gentle somber sombre nostalgic hopeful angry chill",
    "era": "baroque renaissance medieval classical-era romantic-era modern contemporary trecento",
    "region": "irish german scottish english french italian spanish latin african "
    "brazilian american british celtic",
    "genre": "rock pop jazz blues folk classical traditional electronic hip-hop hip hop "
    "country metal punk reggae soul funk ambient techno house disco gospel "
    "indie world soundtrack",
    "form": "chorale reel jig slip jig hornpipe strathspey air folk song mass madrigal "
    "motet medieval song string quartet piano sonata fiddle tune waltz march "
    "lullaby ballad hymn sonata fugue minuet polka anthem",
    "instrument": "piano harpsichord organ accordion nylon guitar acoustic guitar "
    "electric guitar guitar violin viola cello double bass bass harp strings choir "
    "trumpet trombone french horn horn oboe bassoon clarinet flute recorder "
    "tin whistle banjo fiddle drums percussion saxophone synthesizer synth "
    "mandolin ukulele bagpipes",
    "ensemble": "solo duet trio quartet ensemble orchestra band",
    "voice": "vocal instrumental male vocal female vocal vocals",
    "mode": "major minor dorian mixolydian lydian phrygian aeolian ionian locrian",
    "metre-type": "simple compound duple triple quadruple irregular",
    "composer": "bach palestrina monteverdi mozart haydn beethoven schubert handel vivaldi chopin",
}
_MULTI = {"slip jig", "folk song", "medieval song", "string quartet", "piano sonata",
          "fiddle tune", "nylon guitar", "acoustic guitar", "electric guitar", "double bass",
          "tin whistle", "french horn", "male vocal", "female vocal", "hip hop"}  # fmt: skip


def _build_lexicon() -> dict[str, str]:
    lexicon: dict[str, str] = {}
    for category, words in _WORDS.items():
        text = words
        for phrase in sorted(_MULTI, key=len, reverse=True):
            if phrase in text:
                lexicon.setdefault(phrase, category)
                text = text.replace(phrase, " ")
        for word in text.split():
            lexicon.setdefault(word, category)
    return lexicon


#: tag (lower case) -> slot category; extend it or pass your own to :func:`template_caption`.
LEXICON: dict[str, str] = _build_lexicon()

_KEY = re.compile(
    r"^[a-g](#|b|-flat|-sharp)? (major|minor|dorian|mixolydian|lydian|phrygian|aeolian|ionian|locrian)$"
)
_METRE = re.compile(r"^\d{1,2}/\d{1,2}$")
_DECADE = re.compile(r"^(\d{2})?\d0s$")


def categorize(tag: str, lexicon: Mapping[str, str] | None = None) -> str:
    """The slot category of one tag (see the module docstring)."""
    t = tag.strip().lower()
    lex = LEXICON if lexicon is None else lexicon
    if t in lex:
        return lex[t]
    if _KEY.match(t):
        return "key"
    if _METRE.match(t):
        return "metre"
    if _DECADE.match(t):
        return "era"
    if t.endswith((" song", " tune", " dance")):
        return "form"
    return "other"


# ---------------------------------------------------------------------------- grammar helpers

_AN_EXCEPTIONS = ("hour", "honest", "honou", "heir", "mp3", "8", "11", "18", "80")
_A_EXCEPTIONS = ("uni", "use", "usu", "eu", "one", "once", "ur")


def indefinite(phrase: str) -> str:
    """``"organ"`` -> ``"an organ"``, ``"piano"`` -> ``"a piano"``, ``"upbeat"`` -> ``"an
    upbeat"``, ``"unison"`` -> ``"a unison"``, ``"hour"`` -> ``"an hour"``."""
    word = phrase.strip().lower()
    if word.startswith(_AN_EXCEPTIONS):
        article = "an"
    elif word.startswith(_A_EXCEPTIONS):
        article = "a"
    else:
        article = "an" if word[:1] in "aeiou" else "a"
    return f"{article} {phrase.strip()}"


def join_list(words: Sequence[str], *, conjunction: str = "and") -> str:
    """``["piano", "violin", "cello"]`` -> ``"piano, violin and cello"``."""
    words = [w for w in words if w]
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _key_text(tag: str) -> str:
    note, _, mode = tag.partition(" ")
    note = note[:1].upper() + note[1:]
    return f"{note} {mode}"


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def tag_concatenation(tags: Sequence[str]) -> str:
    """The baseline "caption": the tags joined by commas (what a ``tag`` text holds)."""
    return ", ".join(tags)


# ---------------------------------------------------------------------------- the grammar

_NOUNS = ("piece", "track", "recording", "composition", "tune")
_PLAY = ("played on", "performed on", "featuring", "scored for", "arranged for")
_OTHER = ("with hints of {}", "tagged {}", "with elements of {}", "carrying a touch of {}")


@dataclass
class _Slots:
    by: dict[str, list[str]] = field(default_factory=dict)

    def get(self, category: str) -> list[str]:
        return self.by.get(category, [])


def _slots(tags: Sequence[str], lexicon: Mapping[str, str] | None) -> _Slots:
    slots = _Slots()
    for tag in dict.fromkeys(t.strip().lower() for t in tags if t and t.strip()):
        slots.by.setdefault(categorize(tag, lexicon), []).append(tag)
    return slots


def _subject(s: _Slots, rng: random.Random) -> tuple[str, bool]:
    """The noun phrase without article, and whether the head noun is a tag (a form)."""
    adjectives: list[str] = []
    adjectives += s.get("tempo")[:1]
    adjectives += s.get("mood")[:1]
    adjectives += [t for t in s.get("voice") if t in ("instrumental", "vocal")]
    adjectives += s.get("era")[:1]
    adjectives += [t.capitalize() for t in s.get("region")]
    forms = s.get("form")
    genres = s.get("genre")
    if forms:
        head = forms[0]
        adjectives += [g for g in genres if g not in head]
    else:
        head = rng.choice(_NOUNS)
        adjectives += genres[:2]
    head_words = set(head.lower().split())
    adjectives = [a for a in dict.fromkeys(adjectives) if a.lower() not in head_words]
    return " ".join([*adjectives, head]), bool(forms)


def _used_in_subject(s: _Slots) -> set[str]:
    used = set(s.get("tempo")[:1] + s.get("mood")[:1] + s.get("era")[:1] + s.get("region"))
    used |= {t for t in s.get("voice") if t in ("instrumental", "vocal")}
    forms = s.get("form")
    used |= set(forms[:1])
    used |= set(s.get("genre") if forms else s.get("genre")[:2])
    return used


def _clauses(s: _Slots, rng: random.Random, used: set[str]) -> list[str]:
    """Phrases for every tag the subject did not already carry."""
    out: list[str] = []
    inst = s.get("instrument")
    if inst == ["choir"]:
        out.append(rng.choice(["sung by a choir", "for choir"]))
    elif inst == ["strings"]:
        out.append(rng.choice(["played by strings", "for strings"]))
    elif inst:
        out.append(f"{rng.choice(_PLAY)} {join_list(inst)}")
    ensemble = [t for t in s.get("ensemble") if t not in used]
    for t in ensemble:
        out.append(rng.choice([f"as {indefinite(t)}", f"in {indefinite(t)} setting"]))
    keys = s.get("key")
    modes = [m for m in s.get("mode") if not any(k.endswith(m) for k in keys)]
    if keys:
        out.append(f"in {join_list([_key_text(k) for k in keys], conjunction='or')}")
    for m in modes:
        out.append(f"in {indefinite(m)} key" if m in ("major", "minor") else f"in the {m} mode")
    metres = s.get("metre")
    if metres:
        out.append(f"in {join_list(metres, conjunction='or')} time")
    order = ("simple", "compound", "irregular", "duple", "triple", "quadruple")
    types = sorted(s.get("metre-type"), key=lambda t: order.index(t) if t in order else 9)
    if types:
        out.append(f"in {' '.join(types)} metre")
    voices = [t for t in s.get("voice") if t not in used]
    for t in voices:
        out.append(f"with {t}" if t != "vocals" else "with vocals")
    moods = [t for t in s.get("mood") if t not in used]
    if moods:
        out.append(rng.choice([f"with {indefinite(join_list(moods))} mood",
                               f"that feels {join_list(moods)}"]))  # fmt: skip
    extra_forms = [t for t in s.get("form") if t not in used]
    if extra_forms:
        out.append(f"in the {join_list(extra_forms)} tradition")
    extra = [t for t in s.get("genre") + s.get("era") + s.get("tempo") if t not in used]
    if extra:
        out.append(rng.choice(["with {} touches", "with a {} flavour"]).format(join_list(extra)))
    composers = s.get("composer")
    if composers:
        names = join_list([c.capitalize() for c in composers], conjunction="or")
        out.append(rng.choice([f"in the manner of {names}", f"in the style of {names}"]))
    other = s.get("other")
    if other:
        out.append(rng.choice(_OTHER).format(join_list(other)))
    return out


def _metadata_phrase(meta: Mapping[str, Any], rng: random.Random) -> str:
    title, artist, album = (str(meta.get(k) or "").strip() for k in ("title", "artist", "album"))
    parts = []
    if title:
        parts.append(f'"{title}"')
    if artist and artist.lower() not in ("traditional", "anonymous", "unknown"):
        parts.append(f"by {artist}")
    if album:
        parts.append(rng.choice([f"from the album {album}", f"from {album}"]))
    return " ".join(parts)


def template_caption(
    tags: Sequence[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    seed: int = 0,
    variant: str = "",
    lexicon: Mapping[str, str] | None = None,
) -> str:
    """A fluent caption mentioning every tag; deterministic given the inputs and ``seed``.

    ``metadata`` may hold ``title``, ``artist``, ``album``, ``bpm`` or ``tempo`` (a number of
    beats per minute) and ``key`` (e.g. ``"A major"``); they are woven into the caption.
    ``variant`` (e.g. the item id) is mixed into the seed so that tracks with the same tags get
    different sentences.
    """
    meta = dict(metadata or {})
    tags = [t.strip().lower() for t in tags if t and t.strip()]
    if not tags and not any(meta.values()):
        raise MelodexError("template_caption needs at least one tag or metadata field")
    key_id = json.dumps(
        [seed, variant, sorted(tags), meta.get("title"), meta.get("artist")], default=str
    )
    rng = random.Random(key_id)
    s = _slots(tags, lexicon)
    key_meta = str(meta.get("key") or "").strip()
    if key_meta and not s.get("key") and _KEY.match(key_meta.lower()):
        s.by.setdefault("key", []).append(key_meta.lower())
    subject, _ = _subject(s, rng)
    clauses = _clauses(s, rng, _used_in_subject(s))
    bpm = meta.get("bpm", meta.get("tempo"))
    if isinstance(bpm, int | float) and bpm > 0:
        clauses.append(
            rng.choice([f"at about {round(bpm)} bpm", f"at {round(bpm)} beats per minute"])
        )
    first, rest = clauses[:2], clauses[2:]
    rng.shuffle(rest)
    who = _metadata_phrase(meta, rng)
    plan = rng.randrange(4)
    np_ = indefinite(subject)
    if plan == 0:
        lead = f"{np_}{' ' + who if who else ''}"
        body = [lead + (", " + ", ".join(first) if first else "") + "."]
    elif plan == 1:
        lead = f"this is {np_}{' ' + who if who else ''}"
        body = [lead + (", " + ", ".join(first) if first else "") + "."]
    elif plan == 2:
        lead = (f"{who}: " if who else "") + f"{np_}"
        body = [lead + (" " + ", ".join(first) if first else "") + "."]
    else:
        opener = rng.choice(["you will hear", "listen to", "here is"])
        lead = f"{opener} {np_}{' ' + who if who else ''}"
        body = [lead + (", " + ", ".join(first) if first else "") + "."]
    if rest:
        verb = rng.choice(["it unfolds", "the music is set", "the piece comes", "it is written"])
        body.append(f"{verb} {join_list(rest)}.")
    return " ".join(_capitalise(b) for b in body)


# ---------------------------------------------------------------------------- diversity


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9#/']+", text.lower())


def ngram_counts(texts: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of every word n-gram over the texts (lower-cased word tokens)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        counts.update(_ngrams(_tokens(text), n))
    return counts


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n of a set of texts: unique n-grams / all n-grams, pooled over the texts
    (Li et al., 2016). Tokens are lower-cased words; 0.0 when there is no n-gram.

    The ratio falls as texts get longer (function words repeat), so compare texts of similar
    length, or read it beside the absolute number of distinct n-grams (:func:`ngram_counts`)."""
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    counts = ngram_counts(texts, n)
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


# ---------------------------------------------------------------------------- LLM backend


class CaptionBackendError(MelodexError):
    """The LLM endpoint failed, timed out or answered something unusable; names the URL."""


SYSTEM_PROMPT = (
    "You write one-sentence or two-sentence music descriptions for a music search engine. "
    "Use every tag you are given, invent nothing that the tags do not say, and answer with "
    "the description only."
)


@dataclass
class LLMBackend:
    """Pseudo-captions from a chat model behind an OpenAI-compatible ``/v1/chat/completions``.

    ``base_url`` (e.g. ``http://127.0.0.1:8000`` or ``.../v1``) and ``model`` default to
    ``$MELODEX_LLM_URL`` / ``$MELODEX_LLM_MODEL``; ``$MELODEX_LLM_API_KEY`` (or ``api_key``) is
    sent as ``Authorization: Bearer ...``. Each request waits ``timeout`` seconds; connection
    errors, timeouts, HTTP 429 and 5xx are retried ``retries`` times with exponential backoff;
    other failures raise :class:`CaptionBackendError` at once. Nothing is sent unless you build
    one of these: the template grammar is the default.
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    temperature: float = 0.7
    max_tokens: int = 120
    system_prompt: str = SYSTEM_PROMPT

    def __post_init__(self) -> None:
        self.base_url = self.base_url or os.environ.get("MELODEX_LLM_URL")
        self.model = self.model or os.environ.get("MELODEX_LLM_MODEL") or "default"
        self.api_key = self.api_key or os.environ.get("MELODEX_LLM_API_KEY")
        if not self.base_url:
            raise CaptionBackendError(
                "LLM backend needs a base URL (base_url= or $MELODEX_LLM_URL)"
            )
        if not re.match(r"^https?://", self.base_url):
            raise CaptionBackendError(f"LLM base URL must start with http(s)://: {self.base_url!r}")
        if self.retries < 0 or self.timeout <= 0:
            raise CaptionBackendError("LLM backend: retries must be >= 0 and timeout > 0")

    @property
    def url(self) -> str:
        base = str(self.base_url).rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    def prompt(self, tags: Sequence[str], metadata: Mapping[str, Any] | None = None) -> str:
        lines = [f"Tags: {', '.join(tags)}"]
        for k in ("title", "artist", "album", "bpm", "key"):
            if metadata and metadata.get(k) not in (None, ""):
                lines.append(f"{k.capitalize()}: {metadata[k]}")
        lines.append("Write the description.")
        return "\n".join(lines)

    def request_body(self, tags: Sequence[str], metadata: Mapping[str, Any] | None = None) -> dict:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.prompt(tags, metadata)},
            ],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def caption(self, tags: Sequence[str], *, metadata: Mapping[str, Any] | None = None) -> str:
        """One caption for one tag set (raises :class:`CaptionBackendError`)."""
        body = json.dumps(self.request_body(tags, metadata)).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:200].decode("utf-8", "replace")
                last = f"HTTP {exc.code} {exc.reason}: {detail}"
                if exc.code == 429 or exc.code >= 500:
                    continue
                raise CaptionBackendError(f"{self.url}: {last}") from None
            except TimeoutError:
                last = f"no answer within {self.timeout:g} s"
                continue
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, TimeoutError):
                    last = f"no answer within {self.timeout:g} s"
                else:
                    last = f"cannot connect ({reason})"
                continue
            except OSError as exc:  # connection reset mid-response, etc.
                last = f"connection failed ({exc})"
                continue
            return self._parse(payload)
        raise CaptionBackendError(f"{self.url}: {last} (gave up after {attempts} attempt(s))")

    def _parse(self, payload: bytes) -> str:
        try:
            data = json.loads(payload)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = payload[:200].decode("utf-8", "replace")
            raise CaptionBackendError(
                f"{self.url}: unexpected response (no choices[0].message.content): {snippet!r}"
            ) from exc
        if not isinstance(content, str) or not content.strip():
            raise CaptionBackendError(f"{self.url}: the model returned an empty caption")
        return " ".join(content.split())
