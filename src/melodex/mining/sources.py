"""Candidate (audio reference, text) pairs from a folder of documents (WikiMuTe's data selection).

Formats, by extension:

- ``.wiki`` / ``.mediawiki``: MediaWiki wikitext. Audio comes from ``[[File:x.ogg|...|caption]]``
  (also ``Image:`` / ``Media:``), ``{{Listen|filename=...|title=...|description=...}}`` (with
  ``filename2=`` ... for more files) and ``<gallery>`` lines ``File:x.ogg|caption``.
- ``.xml``: a simple dump extract, ``<page><title/><id/><revision><text>wikitext</text>``
  ``</revision></page>`` (any namespace, several pages per file).
- ``.html`` / ``.htm``: ``<audio src>``, ``<audio><source src>`` and ``<a href>`` to audio files;
  inside a ``<figure>`` the ``<figcaption>`` is the caption, else the audio's ``title`` /
  ``aria-label``.
- ``.txt``: file names ending in an audio extension; the caption is the rest of that line (or the
  next non-empty line when the rest is empty).

Each reference gives up to two candidates: kind ``"caption"`` (the text next to the audio) and
kind ``"page"`` (the page's prose: wikitext with templates, references, tables, files and
categories removed and links replaced by their labels; HTML body text outside figures; plain text
without the reference lines). `mine_records` groups them into manifest-like records.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from melodex.errors import MelodexError

AUDIO_EXTENSIONS = (".ogg", ".oga", ".flac", ".mp3", ".wav", ".opus", ".mid", ".midi")
WIKI_SUFFIXES = (".wiki", ".mediawiki")
HTML_SUFFIXES = (".html", ".htm")
SUFFIXES = (*WIKI_SUFFIXES, ".xml", *HTML_SUFFIXES, ".txt")

_EXT = "|".join(e[1:] for e in AUDIO_EXTENSIONS)
_AUDIO_NAME = re.compile(
    rf"(?<![\w.\-/])(?:[\w\-.,'()&!+]+ )*?[\w\-.,'()&!+]*\w[\w\-.,'()&!+]*\.(?:{_EXT})(?![\w])",
    re.I,
)
_AUDIO_NAME_NOSPACE = re.compile(rf"[^\s\"'<>|\[\]{{}}=/]+\.(?:{_EXT})(?!\w)", re.I)


@dataclass(frozen=True)
class Candidate:
    """One candidate pair: an audio file name and a text found with it."""

    audio: str
    text: str
    kind: str  # "caption" or "page"
    page: str  # page id (dump id, or the file's stem)
    title: str
    source: str  # the document's path


def is_audio_name(name: str) -> bool:
    return name.strip().lower().endswith(AUDIO_EXTENSIONS)


def normalise_audio_name(name: str) -> str:
    """A wiki file name as MediaWiki stores it: prefix dropped, spaces for underscores, first
    letter upper case."""
    name = html.unescape(name).strip()
    name = re.sub(r"^(?:file|image|media):", "", name, flags=re.I).strip()
    name = name.rsplit("/", 1)[-1].replace("_", " ")
    return name[:1].upper() + name[1:] if name else name


def find_audio_references(text: str, *, spaces: bool = False) -> list[str]:
    """Audio file names (.ogg .oga .flac .mp3 .wav .opus .mid .midi) in free text, in order,
    without repeats. File names with spaces are only found with ``spaces=True`` (then a name
    extends left over space-separated words, which over-reaches in prose)."""
    pattern = _AUDIO_NAME if spaces else _AUDIO_NAME_NOSPACE
    seen: dict[str, None] = {}
    for m in pattern.finditer(text):
        seen.setdefault(m.group().strip(), None)
    return list(seen)


# --------------------------------------------------------------------------- wikitext


def _balanced(text: str, i: int, open_: str, close: str) -> int:
    """Index just past the construct opened at ``text[i:]`` (nested), or len(text)."""
    depth = 0
    while i < len(text):
        if text.startswith(open_, i):
            depth += 1
            i += len(open_)
        elif text.startswith(close, i):
            depth -= 1
            i += len(close)
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _split_params(inner: str) -> list[str]:
    """Split on top-level ``|`` (not inside nested [[ ]] or {{ }})."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(inner):
        two = inner[i : i + 2]
        if two in ("[[", "{{"):
            depth += 1
            i += 2
        elif two in ("]]", "}}"):
            depth -= 1
            i += 2
        elif inner[i] == "|" and depth == 0:
            parts.append(inner[start:i])
            start = i = i + 1
        else:
            i += 1
    parts.append(inner[start:])
    return parts


_FILE_OPTION = re.compile(
    r"^\s*(?:thumb|thumbnail|frame|framed|frameless|border|left|right|center|centre|none|upright"
    r"(?:\s*=?\s*[\d.]+)?|\d*x?\d+\s*px|(?:alt|link|page|class|lang|start|end|thumbtime|"
    r"upright|baseline|sub|super|top|text-top|middle|bottom|text-bottom)\s*=.*)\s*$",
    re.I,
)
_FILE_LINK = re.compile(r"\[\[\s*(?:file|image|media)\s*:", re.I)
_TEMPLATE_KEEP = re.compile(r"^\s*(?:lang|nowrap|nobr|small|big|em|sic|vr)\s*$", re.I)


def _template_text(inner: str) -> str:
    """The visible text of a few inline templates ({{lang|fr|text}} -> text); others vanish."""
    parts = _split_params(inner)
    if _TEMPLATE_KEEP.match(parts[0]) and len(parts) > 1:
        return parts[-1].split("=", 1)[-1] if "=" in parts[-1] else parts[-1]
    return ""


def clean_wikitext(text: str) -> str:
    """Plain prose from wikitext: comments, references, templates, tables, file links, galleries,
    categories and markup removed, links replaced by labels, one paragraph a line."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", "", text, flags=re.I)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.I | re.S)
    text = re.sub(
        r"<(gallery|math|score|timeline|syntaxhighlight)[^>]*>.*?</\1>", "", text, flags=re.I | re.S
    )
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("{{", i):
            end = _balanced(text, i, "{{", "}}")
            out.append(clean_wikitext(_template_text(text[i + 2 : end - 2])))
            i = end
        elif text.startswith("{|", i):
            i = _balanced(text, i, "{|", "|}")
        elif text.startswith("[[", i):
            end = _balanced(text, i, "[[", "]]")
            inner = text[i + 2 : end - 2]
            target = inner.split("|", 1)[0].strip().lower()
            if not (_FILE_LINK.match(text, i) or re.match(r"^(category|[a-z]{2,3}):", target)):
                label = _split_params(inner)[-1]
                out.append(clean_wikitext(label))
            i = end
        else:
            out.append(text[i])
            i += 1
    text = "".join(out)
    text = re.sub(r"\[(?:https?:)?//\S+\s+([^\]]+)\]", r"\1", text)
    text = re.sub(r"\[(?:https?:)?//\S+\]", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)
    text = re.sub(r"</?[a-zA-Z][^>]*>", "", text)
    text = html.unescape(text)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if re.match(r"^=+.*=+$", line) or line.startswith(("__", "|", "!")):
            continue
        line = re.sub(r"^[*#:;]+\s*", "", line)
        line = re.sub(r"\s+", " ", line)
        line = re.sub(r"\s+([,.;:!?)])", r"\1", line).replace("( ", "(").replace("()", "")
        if line:
            lines.append(line)
    return "\n".join(lines)


def _file_caption(params: list[str]) -> str:
    """The caption of a file link: the last parameter that is not an option."""
    for part in reversed(params[1:]):
        if not _FILE_OPTION.match(part) and part.strip():
            return clean_wikitext(part)
    return ""


def _listen_items(inner: str) -> list[tuple[str, str]]:
    fields: dict[str, str] = {}
    for part in _split_params(inner)[1:]:
        if "=" in part:
            key, value = part.split("=", 1)
            fields[key.strip().lower()] = value.strip()
    items = []
    for n in ("", *map(str, range(2, 21))):
        name = fields.get(f"filename{n}")
        if not name:
            continue
        title = clean_wikitext(fields.get(f"title{n}", ""))
        desc = clean_wikitext(fields.get(f"description{n}", ""))
        text = f"{title}: {desc}" if title and desc else title or desc
        items.append((name, text))
    return items


def wikitext_references(text: str) -> list[tuple[str, str]]:
    """(audio file name, caption) pairs of a wikitext page, in page order."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    found: list[tuple[int, str, str]] = []
    for m in re.finditer(r"<gallery[^>]*>(.*?)</gallery>", text, flags=re.I | re.S):
        for line in m.group(1).splitlines():
            name, _, caption = line.strip().partition("|")
            if is_audio_name(name):
                params = [name, *_split_params(caption)] if caption else [name]
                found.append((m.start(), name, _file_caption(params)))
    i = 0
    while True:
        m = re.compile(r"\[\[|\{\{").search(text, i)
        if not m:
            break
        i = m.start()
        if text.startswith("[[", i):
            end = _balanced(text, i, "[[", "]]")
            if _FILE_LINK.match(text, i):
                params = _split_params(text[i + 2 : end - 2])
                if is_audio_name(params[0]):
                    found.append((i, params[0], _file_caption(params)))
                i = end
            else:
                i += 2  # links may hold nested file links? no; but templates may follow inside
        else:
            end = _balanced(text, i, "{{", "}}")
            inner = text[i + 2 : end - 2]
            if re.match(r"^\s*listen\s*(\||$)", inner, re.I):
                found.extend((i, name, cap) for name, cap in _listen_items(inner))
                i = end
            else:
                i += 2
    found.sort(key=lambda f: f[0])
    return [(normalise_audio_name(name), caption) for _, name, caption in found]


# --------------------------------------------------------------------------- HTML


def _url_name(url: str) -> str:
    """The file name of a link or path, %-escapes decoded."""
    return unquote(url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1])


class _HTMLCollector(HTMLParser):
    SKIP = ("script", "style", "nav", "noscript", "head")
    BLOCK = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr", "section")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1 = ""
        self.body: list[str] = []
        self.refs: list[tuple[str, str]] = []
        self._skip = 0
        self._in_title = self._in_h1 = False
        self._figure: list[dict[str, Any]] = []  # open figures: audio names, caption parts
        self._in_caption = 0
        self._audio: list[str] | None = None  # names of the open <audio>
        self._audio_label = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "h1":
            self._in_h1 = True
        elif tag == "figure":
            self._figure.append({"audio": [], "caption": []})
        elif tag == "figcaption":
            self._in_caption += 1
        elif tag == "audio":
            self._audio = []
            self._audio_label = a.get("title") or a.get("aria-label") or ""
            if is_audio_name(a.get("src", "")):
                self._audio.append(a["src"])
        elif tag == "source" and self._audio is not None and is_audio_name(a.get("src", "")):
            self._audio.append(a["src"])
        elif tag == "a" and is_audio_name(a.get("href", "")):
            self._add([a["href"]], a.get("title", ""))
        if tag in self.BLOCK and not self._in_caption:
            self.body.append("\n")

    def _add(self, names: list[str], label: str) -> None:
        names = list(dict.fromkeys(_url_name(n) for n in names))
        if self._figure:
            self._figure[-1]["audio"].extend(names)
        else:
            self.refs.extend((n, label.strip()) for n in names)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag == "h1":
            self._in_h1 = False
        elif tag == "figcaption":
            self._in_caption = max(0, self._in_caption - 1)
        elif tag == "audio" and self._audio is not None:
            self._add(self._audio[:1], self._audio_label)  # <source>s are one recording
            self._audio = None
        elif tag == "figure" and self._figure:
            fig = self._figure.pop()
            caption = re.sub(r"\s+", " ", "".join(fig["caption"])).strip()
            self.refs.extend((n, caption) for n in dict.fromkeys(fig["audio"]))
        if tag in self.BLOCK and not self._in_caption:
            self.body.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip or self._in_title:
            return
        if self._in_h1:
            self.h1 += data
        if self._in_caption and self._figure:
            self._figure[-1]["caption"].append(data)
        elif not self._figure and not self._in_h1:
            self.body.append(data)


def html_document(text: str) -> tuple[str, list[tuple[str, str]], str]:
    """(title, [(audio, caption)], page text) of an HTML page."""
    parser = _HTMLCollector()
    parser.feed(text)
    parser.close()
    lines = [re.sub(r"\s+", " ", ln).strip() for ln in "".join(parser.body).splitlines()]
    title = (parser.h1 or parser.title).strip()
    return title, parser.refs, "\n".join(ln for ln in lines if ln)


# --------------------------------------------------------------------------- plain text


def text_document(text: str) -> tuple[list[tuple[str, str]], str]:
    """([(audio, caption)], page text without the reference lines) of a plain-text document."""
    lines = text.splitlines()
    refs: list[tuple[str, str]] = []
    page: list[str] = []
    skip_next = False
    for i, line in enumerate(lines):
        if skip_next and line.strip():
            skip_next = False
            continue
        names = find_audio_references(line)
        if not names:
            page.append(line)
            continue
        rest = line
        for name in names:
            rest = rest.replace(name, " ")
        rest = re.sub(r"\s+", " ", rest).strip()
        rest = re.sub(r"^(?:audio|listen|recording|file|sound)\b", "", rest, flags=re.I)
        rest = re.sub(r"^[\s:\-–—|,;()\[\]]+|[\s:\-–—|,;(\[]+$", "", rest)
        if not rest:
            following = next((ln.strip() for ln in lines[i + 1 :] if ln.strip()), "")
            if following and not find_audio_references(following):
                rest, skip_next = following, True
        refs.extend((n, rest) for n in names)
    paragraphs = re.split(r"\n\s*\n", "\n".join(page))
    body = [re.sub(r"\s+", " ", p).strip() for p in paragraphs]
    return refs, "\n".join(p for p in body if p)


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Document:
    page: str
    title: str
    source: str
    references: tuple[tuple[str, str], ...]
    text: str  # the page text


def _title_from_stem(path: Path) -> str:
    return path.stem.replace("_", " ")


def _xml_pages(path: Path) -> Iterator[tuple[str, str, str]]:
    """(id, title, wikitext) of each <page> of a dump extract."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise MelodexError(f"{path}: not well-formed XML ({exc})") from exc

    def local(el: ET.Element) -> str:
        return el.tag.rsplit("}", 1)[-1]

    for n, page in enumerate(el for el in root.iter() if local(el) == "page"):
        fields: dict[str, str] = {}
        for child in page.iter():
            name = local(child)
            if name in ("title", "id", "text") and name not in fields:
                fields[name] = child.text or ""
        yield (
            fields.get("id") or f"{path.stem}-{n}",
            fields.get("title", ""),
            fields.get("text", ""),
        )


def read_documents(path: str | Path) -> list[Document]:
    """The document(s) of one file (an XML dump extract may hold several pages)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise MelodexError(f"{path}: unsupported document type (expected one of {SUFFIXES})")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MelodexError(f"{path}: unreadable ({exc})") from exc
    if suffix == ".xml":
        return [
            Document(pid, title, str(path), tuple(wikitext_references(wt)), clean_wikitext(wt))
            for pid, title, wt in _xml_pages(path)
        ]
    if suffix in WIKI_SUFFIXES:
        refs = tuple(wikitext_references(raw))
        return [Document(path.stem, _title_from_stem(path), str(path), refs, clean_wikitext(raw))]
    if suffix in HTML_SUFFIXES:
        title, hrefs, text = html_document(raw)
        return [Document(path.stem, title or _title_from_stem(path), str(path), tuple(hrefs), text)]
    trefs, text = text_document(raw)
    return [Document(path.stem, _title_from_stem(path), str(path), tuple(trefs), text)]


def iter_documents(folder: str | Path) -> Iterator[Document]:
    """Every document under ``folder`` (recursive, sorted by path; other files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MelodexError(f"not a folder: {folder}")
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES):
        if path.is_file():
            yield from read_documents(path)


def candidates(documents: Iterable[Document]) -> list[Candidate]:
    """Candidate pairs: per audio reference a caption candidate (when the caption is non-empty)
    and a page candidate (when the page text is non-empty)."""
    out = []
    for doc in documents:
        seen: set[str] = set()
        for audio, caption in doc.references:
            if caption:
                out.append(Candidate(audio, caption, "caption", doc.page, doc.title, doc.source))
            if doc.text and audio not in seen:
                out.append(Candidate(audio, doc.text, "page", doc.page, doc.title, doc.source))
            seen.add(audio)
    return out


def find_candidates(folder: str | Path) -> list[Candidate]:
    return candidates(iter_documents(folder))


def records_from_candidates(cands: Iterable[Candidate]) -> list[dict[str, Any]]:
    """Manifest-like records, one per (page, audio): ``texts`` holds the raw candidate texts as
    ``{"kind": "mined", "text", "source": "caption"|"page"}``; ``extra`` names page and file.
    ``tags`` is empty and ``split`` is ``"train"`` so `read_manifest(check_audio=False)` reads
    the result."""
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c in cands:
        key = (c.source, c.page, c.audio)
        if key not in records:
            records[key] = {
                "id": f"{c.page}/{c.audio}",
                "audio": c.audio,
                "texts": [],
                "tags": [],
                "split": "train",
                "extra": {"page": c.page, "title": c.title, "source": c.source},
            }
        entry = {"kind": "mined", "text": c.text, "source": c.kind}
        if entry not in records[key]["texts"]:
            records[key]["texts"].append(entry)
    ids: dict[str, int] = {}
    for rec in records.values():  # the same page id in two files: keep ids unique
        n = ids.get(rec["id"], 0)
        ids[rec["id"]] = n + 1
        if n:
            rec["id"] = f"{rec['id']}#{n + 1}"
    return list(records.values())


def mine_records(folder: str | Path) -> list[dict[str, Any]]:
    """`find_candidates` grouped into manifest-like records."""
    return records_from_candidates(find_candidates(folder))


def weak_training_texts(source: Path | None = None) -> list[str]:
    """Paragraphs for weak labels: one per line of a file, or every line of a folder's
    documents; by default the packaged ``unannotated.txt``."""
    from melodex.mining.vocab import read_text_lines

    source = source or Path(__file__).parent / "data" / "unannotated.txt"
    if source.is_dir():
        return [p for d in iter_documents(source) for p in d.text.splitlines() if p]
    return read_text_lines(str(source))
