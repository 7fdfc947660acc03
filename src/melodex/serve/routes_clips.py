"""Uploaded clips: what they sound like, decoded in a time-limited child process."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from melodex.serve.models import DescribeOut, ErrorResponse, TextSetOut
from melodex.serve.routes_library import K, hit_json
from melodex.serve.service import LibraryService
from melodex.serve.upload import SNIFF_BYTES, UploadError, decode_clip, sniff_audio


def clips_router(service: LibraryService) -> APIRouter:
    """``POST /api/describe``: an upload's tags, nearest texts (built-in, and of a held text
    set) and nearest library tracks; ``GET /api/text-sets``: the sets to choose from."""
    router = APIRouter(tags=["clips"])
    config = service.config

    @router.post(
        "/api/describe",
        response_model=DescribeOut,
        max_body_size=config.max_upload_bytes + 64 * 1024,  # + multipart headers
        responses={
            408: {"model": ErrorResponse, "description": "decode_timeout"},
            413: {"model": ErrorResponse, "description": "payload_too_large"},
            415: {"model": ErrorResponse, "description": "unsupported_media_type"},
        },
    )
    async def describe(
        file: Annotated[UploadFile, File(description="An audio clip (wav, flac, mp3, ...).")],
        k: K = 10,
        texts: Annotated[
            str | None,
            Query(
                max_length=40,
                description="A text set's id (GET /api/text-sets): its "
                "nearest texts come back as `matches`, each with its item and kind.",
            ),
        ] = None,
        kind: Annotated[
            list[str] | None, Query(description="Only these kinds of texts (repeatable).")
        ] = None,
    ) -> dict[str, Any]:
        """Tags, nearest texts and nearest library tracks of an uploaded clip.

        The clip is decoded in a child process with a time limit, in a temporary folder that
        is deleted afterwards; nothing is written into the library.
        """
        text_set = await asyncio.to_thread(service.text_set, texts) if texts else None
        kinds = {x.strip()[:40] for x in (kind or [])[:20] if x.strip()} or None
        with service.heavy(), tempfile.TemporaryDirectory(prefix="melodex-upload-") as tmp:
            head = await file.read(SNIFF_BYTES)
            ext = sniff_audio(head)
            if ext is None:
                raise UploadError(
                    415,
                    "unsupported_media_type",
                    "the upload is not an audio file this server reads (by its first bytes: "
                    "wav, flac, ogg/opus, aiff, mp3, aac, m4a, wma, mka)",
                )
            src = Path(tmp) / f"clip{ext}"
            size = len(head)
            with open(src, "wb") as out:
                out.write(head)
                while chunk := await file.read(1 << 20):
                    size += len(chunk)
                    if size > config.max_upload_bytes:
                        raise UploadError(
                            413,
                            "payload_too_large",
                            f"the upload is larger than {config.max_upload_bytes // 2**20} MB",
                        )
                    out.write(chunk)
            wav = Path(tmp) / "clip.wav"
            await decode_clip(
                src,
                wav,
                sample_rate=service.model.config.sample_rate,
                max_seconds=config.max_clip_seconds,
                timeout=config.decode_timeout,
            )
            desc = await asyncio.to_thread(service.describe, wav, k, texts=text_set, kinds=kinds)
            seconds = _duration(wav)
        out_json = desc.to_json()
        out_json["path"] = Path(file.filename or "clip").name
        out_json["duration"] = seconds
        out_json["similar"] = [hit_json(h) for h in desc.similar]
        return out_json

    @router.get("/api/text-sets", response_model=list[TextSetOut])
    def text_sets() -> list[dict[str, Any]]:
        """The text sets this library holds (``melodex describe FILE --texts MANIFEST`` keeps
        one beside the library), by file name; the page ranks an upload's nearest texts in one."""
        with service.light():
            return service.text_sets()

    return router


def _duration(wav: Path) -> float:
    import soundfile as sf

    return round(float(sf.info(str(wav)).duration), 3)
