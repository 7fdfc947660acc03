"""Evaluation tasks of the seed papers, one module per protocol, and the runner.

- :mod:`~melodex.evaluate.tasks.text_retrieval`: ``caption``, ``track2text``, ``unseen``;
- :mod:`~melodex.evaluate.tasks.tag_retrieval`: ``tag``, ``tag-all`` and the papers' tag lists
  (``tag-ttmr-50``, ``tag-ttmr-1054``, ``tag-mtt-top50``), with Won et al.'s P@10;
- :mod:`~melodex.evaluate.tasks.zero_shot`: ``zeroshot`` (bare labels), ``zeroshot-prompts``;
- :mod:`~melodex.evaluate.tasks.audio_similarity`: melodex's ``tag-triplets`` and
  ``same-artist`` (audio -> audio on the manifest's own labels);
- :mod:`~melodex.evaluate.tasks.ttmrpp_artist`: ``ttmrpp-artist`` (OLGA graph);
- :mod:`~melodex.evaluate.tasks.ttmrpp_track`: ``ttmrpp-track`` (DIM-SIM voted triplets);
- :mod:`~melodex.evaluate.tasks.registry`: names, options, default conventions, `parse_task`;
- :mod:`~melodex.evaluate.tasks.runner`: `run_tasks`.

docs/protocols.md describes each protocol against its paper.
"""

from __future__ import annotations

from melodex.evaluate.tasks.audio_similarity import same_artist_retrieval, tag_triplets
from melodex.evaluate.tasks.common import (
    DEFAULT_TEMPLATES,
    PLACEHOLDER_ARTISTS,
    TaskResult,
    TaskSkippedError,
    field_value,
    tag_groups,
)
from melodex.evaluate.tasks.registry import DEFAULT_TASKS, RENAMED, TASKS, TaskSpec, parse_task
from melodex.evaluate.tasks.runner import EvaluationRun, ModelRun, run_tasks
from melodex.evaluate.tasks.tag_retrieval import tag_retrieval
from melodex.evaluate.tasks.text_retrieval import (
    caption_retrieval,
    track_to_text_retrieval,
    unseen_query_retrieval,
)
from melodex.evaluate.tasks.ttmrpp_artist import ttmrpp_artist_retrieval
from melodex.evaluate.tasks.ttmrpp_track import ttmrpp_track_similarity
from melodex.evaluate.tasks.zero_shot import zero_shot_classification

__all__ = [
    "DEFAULT_TASKS",
    "DEFAULT_TEMPLATES",
    "PLACEHOLDER_ARTISTS",
    "RENAMED",
    "TASKS",
    "EvaluationRun",
    "ModelRun",
    "TaskResult",
    "TaskSkippedError",
    "TaskSpec",
    "caption_retrieval",
    "field_value",
    "parse_task",
    "run_tasks",
    "same_artist_retrieval",
    "tag_groups",
    "tag_retrieval",
    "tag_triplets",
    "track_to_text_retrieval",
    "ttmrpp_artist_retrieval",
    "ttmrpp_track_similarity",
    "unseen_query_retrieval",
    "zero_shot_classification",
]
