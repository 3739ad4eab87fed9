"""GLUE / SuperGLUE and custom text-classification data for ``run_glue.py``: tasks, readers, features, metrics."""
