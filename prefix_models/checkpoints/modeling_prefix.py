"""The module a saved prefix-models folder carries, so that transformers can load it without our import.

``save_pretrained`` copies this file, as it is, into every folder it writes and names its classes in
``config.json``'s ``auto_map``. ``AutoConfig`` / ``AutoModelFor*.from_pretrained(folder, trust_remote_code=True)``
then import it, in a process that never imported ``prefix_models``. It holds no model code: each class
it names is looked up in the installed ``prefix_models`` package, so the code that runs is the package's.
"""

try:  # transformers lists a remote module's imports to check them, except those inside ``try``
    import prefix_models.checkpoints.remote_code as _remote_code
except ImportError as error:
    raise ImportError(
        "this folder holds a model saved by prefix-models (prefix / prompt tuning); loading it needs that "
        "package installed: pip install prefix-models"
    ) from error


def __getattr__(name: str) -> type:
    """The class ``auto_map`` names, e.g. ``BertPrefixForSequenceClassification``, from ``prefix_models``."""
    return _remote_code.class_by_name(name)
