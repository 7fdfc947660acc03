"""Response shapes of the HTTP API, for validation and the OpenAPI spec.

Keys follow the CLI's JSON contract (README). Two differences, both for the web:
``path`` holds the file name only (the server never reveals folders), and ``id_str`` repeats
``id`` as a string, because track ids are 63-bit and JavaScript numbers hold 53 bits.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="A stable machine-readable code, e.g. not_found.")
    message: str = Field(description="What went wrong, for people.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class HitOut(BaseModel):
    rank: int
    score: float
    id: int
    id_str: str
    path: str = Field(description="The file name, without folders.")
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    duration: float
    segment_start: float | None
    bpm: float | None = None
    key: str | None = None
    mode: str | None = None
    vector_score: float | None = Field(None, description="Cosine similarity, before fusion.")
    text_score: float | None = Field(None, description="BM25 of the metadata match, if any.")


class TagScore(BaseModel):
    text: str
    score: float


class TrackOut(BaseModel):
    id: int
    id_str: str
    filename: str
    format: str = Field(description="The file extension, e.g. flac.")
    size: int
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    duration: float
    tags: list[TagScore] = Field(description="The model's tag confidences, best first.")
    audio_url: str


class TextMatch(BaseModel):
    text: str
    score: float
    item: str = Field(description="Where the text came from: the manifest item's id, or line N.")
    kind: str = Field(description="caption, review, tag, ... (text for a .txt file).")


class TextSetOut(BaseModel):
    id: str = Field(description="Pass as `texts` to /api/describe.")
    name: str = Field(description="The manifest's file name, without folders.")
    texts: int
    kinds: list[str]


class DescribeOut(BaseModel):
    path: str = Field(description="The uploaded file's name as the client sent it.")
    duration: float = Field(description="Seconds of audio decoded (at most the server's limit).")
    tags: list[TagScore]
    texts: list[TagScore]
    similar: list[HitOut]
    matches: list[TextMatch] | None = Field(
        None, description="The chosen text set's nearest texts, with their sources."
    )


class ModelOut(BaseModel):
    name: str
    identity: str
    dim: int


class HealthOut(BaseModel):
    status: str
    tracks: int
    model: ModelOut
    index: str | None = Field(
        description="exact or hnsw (in memory), chroma (the Chroma server's own index); "
        "null while the library is empty."
    )
    store_version: int
    version: str


class MapPoint(BaseModel):
    id: int
    id_str: str
    x: float
    y: float
    title: str | None
    artist: str | None


class MapOut(BaseModel):
    store_version: int
    explained_variance: list[float]
    points: list[MapPoint]
