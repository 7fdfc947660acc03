"""Music vocabularies and weak aspect labels by dictionary matching.

`match_aspects` finds vocabulary terms in a text, widens each to a directly preceding modifier
("distorted" + "guitars", "slow" + "tempo") and merges terms that touch (separated by one space or
hyphen). `weak_annotations` turns unannotated paragraphs into `Annotation` objects with these
aspects, to add to the aspect model's training data.

Precision risk (why weak labels are opt-in): matching knows no context. It marks "rock" in "a rock
formation", "house" in "opera house", "bass" in a sentence about fishing, "blues" as a colour,
"pop" in "population" is avoided by word boundaries but "band" in "wedding band" is not; it marks
terms in history sentences ("the guitarist left the band") that the gold data leave unmarked; and
its spans start and end where the lists say, not where an annotator would ("a walking upright
bass" becomes "upright bass"). Recall is limited to the lists. Measure with and without ``--weak``
on the held-out split before relying on it.

Weak sentence labels (for ``--weak`` with the sentence task) mark a sentence as music-describing
when it holds at least ``min_terms`` distinct matches; this also over-marks sentences such as
"The drummer and the guitarist formed a rock band in 1990".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from melodex.mining.spans import Annotation, Offsets

GENRES = (
    "rock", "pop", "jazz", "blues", "folk", "country", "classical", "baroque", "opera",
    "hip hop", "hip-hop", "rap", "reggae", "ska", "punk", "metal", "heavy metal", "thrash metal",
    "doom metal", "techno", "house", "trance", "drum and bass", "dubstep", "ambient", "funk",
    "soul", "gospel", "disco", "bossa nova", "samba", "tango", "flamenco", "salsa", "cumbia",
    "reggaeton", "bluegrass", "r&b", "rhythm and blues", "synth-pop", "electropop", "new wave",
    "post-punk", "grunge", "indie pop", "indie rock", "trip hop", "krautrock", "new age",
    "fado", "calypso", "polka", "waltz", "march", "lullaby", "ballad", "hymn", "chorale",
    "madrigal", "fugue", "sonata", "minimalist", "electronic",
)  # fmt: skip

INSTRUMENTS = (
    "guitar", "acoustic guitar", "electric guitar", "bass guitar", "bass", "upright bass",
    "double bass", "drums", "drum machine", "snare", "kick drum", "hi-hats", "cymbals", "piano",
    "electric piano", "organ", "hammond organ", "synthesizer", "synth", "synths", "violin",
    "fiddle", "viola", "cello", "harp", "flute", "oboe", "clarinet", "bassoon", "saxophone",
    "trumpet", "trombone", "tuba", "french horn", "horns", "horn section", "strings",
    "string section", "orchestra", "choir", "banjo", "mandolin", "ukulele", "accordion",
    "harmonica", "bagpipes", "sitar", "tabla", "oud", "kora", "marimba", "xylophone",
    "vibraphone", "harpsichord", "timpani", "tambourine", "congas", "bongos", "cajón",
    "pedal steel", "steel drums", "tin whistle", "bodhrán", "harmonium", "vocals", "voice",
    "vocal", "percussion", "breakbeats", "sub-bass", "808",
)  # fmt: skip

MOODS = (
    "melancholic", "melancholy", "sad", "sorrowful", "mournful", "happy", "joyful", "cheerful",
    "uplifting", "euphoric", "dark", "brooding", "gloomy", "ominous", "haunting", "dreamy",
    "peaceful", "calm", "serene", "relaxed", "laid-back", "tender", "romantic", "passionate",
    "aggressive", "angry", "energetic", "lively", "playful", "triumphant", "solemn", "festive",
    "nostalgic", "bittersweet", "mysterious", "hypnotic", "tense", "epic", "intimate",
    "wistful", "plaintive", "lyrical", "catchy", "anthemic", "upbeat",
)  # fmt: skip

TECHNIQUES = (
    "pizzicato", "legato", "staccato", "tremolo", "vibrato", "glissando", "glissandi",
    "harmonics", "col legno", "palm-muted", "fingerpicked", "fingerpicking", "strummed",
    "slide guitar", "double stops", "falsetto", "yodelling", "a cappella", "call-and-response",
    "melisma", "melismatic", "improvisation", "solo", "riff", "riffs", "arpeggio", "arpeggios",
    "drone", "ostinato", "syncopated", "syncopation", "distorted", "distortion", "reverb",
    "echo", "muted", "overdriven", "sampled", "scratching", "looping", "layered", "harmonies",
    "counterpoint", "rasgueado", "slap bass", "wah-wah", "power chords", "blast beats",
)  # fmt: skip

TEMPO_DYNAMICS = (
    "slow", "fast", "brisk", "moderate", "mid-tempo", "tempo", "allegro", "adagio", "andante",
    "presto", "largo", "lento", "accelerando", "ritardando", "rubato", "bpm",
    "beats per minute", "loud", "soft", "quiet", "hushed", "gentle", "forte", "fortissimo",
    "piano", "pianissimo", "crescendo", "diminuendo", "sforzando", "dynamic", "groove",
    "rhythm", "beat", "meter", "triple time", "3/4", "4/4", "6/8", "waltz time", "shuffle",
    "swing", "four-on-the-floor", "driving", "pounding", "steady", "relentless",
)  # fmt: skip

MODIFIERS = (
    "acoustic", "electric", "distorted", "muted", "heavy", "soft", "slow", "fast", "deep",
    "bright", "warm", "dark", "lush", "sparse", "fuzzy", "crunchy", "twangy", "booming",
    "driving", "pounding", "walking", "rolling", "soaring", "breathy", "whispered", "airy",
    "shouted", "growled", "operatic", "female", "male", "solo", "full", "gentle", "rapid",
    "sustained", "clean", "smooth", "gritty", "raw", "pulsing", "swirling", "catchy",
)  # fmt: skip

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "genres": GENRES,
    "instruments": INSTRUMENTS,
    "moods": MOODS,
    "techniques": TECHNIQUES,
    "tempo_dynamics": TEMPO_DYNAMICS,
}


def _pattern(terms: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(t.lower()) for t in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?:e?s)?(?![\w-])", re.I)


_TERMS = _pattern(t for terms in VOCABULARIES.values() for t in terms)
_MODIFIER = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, MODIFIERS)) + r")[ -]$", re.I)


def match_aspects(text: str) -> list[Offsets]:
    """Character spans of vocabulary terms in ``text``, widened to a preceding modifier and merged
    when adjacent (one space or hyphen apart). Sorted, non-overlapping."""
    spans: list[list[int]] = []
    for m in _TERMS.finditer(text):
        start, end = m.span()
        head = _MODIFIER.search(text, max(0, start - 20), start)
        if head:
            start = head.start()
        if spans and start <= spans[-1][1] + 1 and text[spans[-1][1] : start] in ("", " ", "-"):
            spans[-1][1] = end
        elif spans and start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(s, e) for s, e in spans]


_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')]*|(?=\n)|$)")


def sentence_spans(text: str) -> list[Offsets]:
    """Simple sentence boundaries (after . ! ? and closing quotes, and at line breaks), trimmed
    of whitespace. Abbreviations ("No. 3") split too."""
    out = []
    for m in _SENTENCE.finditer(text):
        s, e = m.span()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def weak_annotations(texts: Iterable[str], *, min_terms: int = 2) -> list[Annotation]:
    """Weakly labelled paragraphs: vocabulary aspects, and sentences with >= ``min_terms``
    distinct aspect matches marked as music-describing."""
    out = []
    for text in texts:
        aspects = match_aspects(text)
        sentences = [
            (s, e)
            for s, e in sentence_spans(text)
            if len({text[a:b].lower() for a, b in aspects if s <= a and b <= e}) >= min_terms
        ]
        out.append(Annotation(text, sentences, aspects, {"weak": True}))
    return out


def read_text_lines(path: str) -> list[str]:
    """Paragraphs of a one-paragraph-a-line text file, skipping blank and ``#`` lines."""
    with open(path, encoding="utf-8") as fh:
        return [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
