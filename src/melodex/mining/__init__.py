"""Mining music descriptions from text (WikiMuTe-style).

- `melodex.mining.sources`: candidate (audio reference, text) pairs from wikitext, dump extracts,
  HTML and plain text.
- `melodex.mining.spans`: the span annotation format, token labels, span merging and metrics.
- `melodex.mining.vocab`: music vocabularies and weak aspect labels.
- `melodex.mining.extract`: the sentence and aspect token classifiers (train, save, extract).
- `melodex.mining.filter`: cross-modal relevance filtering of the mined pairs (stage 3).
"""
