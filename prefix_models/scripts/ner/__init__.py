"""CoNLL-style sequence-labelling data for ``run_ner.py``: readers, tag schemes, windows, alignment, seqeval."""
