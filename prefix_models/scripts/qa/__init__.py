"""Extractive question answering for ``examples/run_qa.py``: reading and checking SQuAD-style data
(``data.py``), cutting contexts into windows with their answer labels (``features.py``), turning start/end
logits back into answer texts (``postprocess.py``), the official SQuAD 1.1 / 2.0 scores (``metrics.py``) and
the Trainer that scores answers rather than windows (``trainer.py``)."""
