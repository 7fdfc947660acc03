"""The named tasks: which function, with which options and which default metric convention.

Names of the papers' protocols are the papers' (``ttmrpp-artist``, ``ttmrpp-track``, the tag
lists ``tag-ttmr-50`` ...); melodex's own tasks have their own names (``same-artist``,
``tag-triplets``). A task's default convention is the paper's for the papers' protocols and
melodex's otherwise; ``melodex evaluate --conventions`` overrides it for every task.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from melodex.errors import MelodexError
from melodex.evaluate.tasks.audio_similarity import same_artist_retrieval, tag_triplets
from melodex.evaluate.tasks.common import DEFAULT_TEMPLATES, TaskResult
from melodex.evaluate.tasks.tag_retrieval import tag_retrieval
from melodex.evaluate.tasks.text_retrieval import (
    caption_retrieval,
    track_to_text_retrieval,
    unseen_query_retrieval,
)
from melodex.evaluate.tasks.ttmrpp_artist import ttmrpp_artist_retrieval
from melodex.evaluate.tasks.ttmrpp_track import ttmrpp_track_similarity
from melodex.evaluate.tasks.zero_shot import zero_shot_classification

__all__ = ["DEFAULT_TASKS", "RENAMED", "TASKS", "TaskSpec", "parse_task"]


@dataclass(frozen=True)
class TaskSpec:
    """A named task: the function, the options it runs with, its default convention."""

    name: str
    fn: Callable[..., TaskResult]
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    convention: str = "melodex"

    def with_options(self, **options: Any) -> TaskSpec:
        return TaskSpec(
            self.name, self.fn, {**self.options, **options}, self.description, self.convention
        )


TASKS: dict[str, TaskSpec] = {
    s.name: s
    for s in [
        TaskSpec("caption", caption_retrieval, {}, "caption -> track retrieval"),
        TaskSpec("track2text", track_to_text_retrieval, {}, "track -> caption retrieval"),
        TaskSpec("tag", tag_retrieval, {"top_n": 50}, "tag-query retrieval, the split's 50 most frequent tags"),
        TaskSpec("tag-all", tag_retrieval, {"top_n": None}, "tag-query retrieval, every tag of the split"),
        TaskSpec("tag-ttmr-50", tag_retrieval, {"tags": "ttmr-50"}, "TTMR's 50-tag retrieval (MSD-eCALS)", "ttmr"),
        TaskSpec("tag-ttmr-1054", tag_retrieval, {"tags": "ttmr-1054"}, "TTMR's 1,054-tag retrieval (MSD-eCALS)", "ttmr"),
        TaskSpec("tag-mtt-top50", tag_retrieval, {"tags": "mtt-top50"}, "tag retrieval on the MagnaTagATune top-50 (Won et al.'s P@10)"),
        TaskSpec("zeroshot", zero_shot_classification, {"templates": ["{label}"]}, "zero-shot classification, bare labels as the papers"),
        TaskSpec("zeroshot-prompts", zero_shot_classification, {"templates": list(DEFAULT_TEMPLATES)}, "zero-shot classification, melodex's prompt ensemble"),
        TaskSpec("tag-triplets", tag_triplets, {}, "audio->audio triplets on shared tags (melodex)"),
        TaskSpec("same-artist", same_artist_retrieval, {}, "audio->audio same-artist retrieval, nDCG@200 (melodex)"),
        TaskSpec("unseen", unseen_query_retrieval, {}, "unseen tag-combination queries (TTMR)"),
        TaskSpec("ttmrpp-artist", ttmrpp_artist_retrieval, {}, "TTMR++ artist retrieval on the OLGA graph, nDCG@200", "ttmr-pp"),
        TaskSpec("ttmrpp-track", ttmrpp_track_similarity, {}, "TTMR++ track similarity on DIM-SIM text-anchored triplets", "ttmr-pp"),
    ]
}  # fmt: skip

#: What ``melodex evaluate`` runs without ``--task``: the tasks that need no extra file.
DEFAULT_TASKS = ("caption", "track2text", "tag", "tag-all", "zeroshot", "tag-triplets",
                 "same-artist", "unseen")  # fmt: skip

#: Old names, and what to use instead.
RENAMED = {
    "artist": "same-artist (audio->audio, same artist); TTMR++'s artist protocol is ttmrpp-artist",
    "triplets": "tag-triplets (audio->audio, shared tags); TTMR++'s DIM-SIM protocol is ttmrpp-track",
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_task(spec: str) -> TaskSpec:
    """``"tag"`` or ``"zeroshot:field=extra.form,templates=["{label}","{label} music"]"``.

    Option values are JSON when they parse as JSON (numbers, null, lists), strings otherwise.
    """
    name, _, rest = spec.partition(":")
    if name in RENAMED:
        raise MelodexError(f"task {name!r} was renamed: use {RENAMED[name]}")
    if name not in TASKS:
        raise MelodexError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    options: dict[str, Any] = {}
    for part in filter(None, re.split(r",(?=\s*\w+\s*=)", rest)):
        key, eq, value = part.partition("=")
        if not eq:
            raise MelodexError(f"task option {part!r} in {spec!r} is not key=value")
        options[key.strip()] = _parse_value(value.strip())
    spec_ = TASKS[name].with_options(**options)
    accepted = inspect.signature(spec_.fn).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise MelodexError(f"task {name!r} has no option(s) {unknown}")
    return spec_
