"""BERT with a prefix (P-tuning v2) or a soft prompt, for the four encoder tasks.

Each class is a task mixin over ``BertPreTrainedModel``; the backbone lives in ``self.bert`` as in
transformers, so stock BERT checkpoints load into it. A checkpoint of another model type (ELECTRA,
DistilBERT, ...) is refused by name rather than loaded into a random backbone.
"""

from transformers import BertConfig, BertModel, BertPreTrainedModel

from .configuration import make_prefix_config_class
from .modeling_tasks import (
    PrefixModelForMultipleChoice,
    PrefixModelForQuestionAnswering,
    PrefixModelForSequenceClassification,
    PrefixModelForTokenClassification,
)

BertPrefixConfig = make_prefix_config_class(BertConfig, "prefix")
BertPromptConfig = make_prefix_config_class(BertConfig, "prompt")


class BertPrefixForSequenceClassification(PrefixModelForSequenceClassification, BertPreTrainedModel):
    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForTokenClassification(PrefixModelForTokenClassification, BertPreTrainedModel):
    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForMultipleChoice(PrefixModelForMultipleChoice, BertPreTrainedModel):
    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPrefixForQuestionAnswering(PrefixModelForQuestionAnswering, BertPreTrainedModel):
    config_class = BertPrefixConfig
    backbone_class = BertModel


class BertPromptForSequenceClassification(PrefixModelForSequenceClassification, BertPreTrainedModel):
    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForTokenClassification(PrefixModelForTokenClassification, BertPreTrainedModel):
    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForMultipleChoice(PrefixModelForMultipleChoice, BertPreTrainedModel):
    config_class = BertPromptConfig
    backbone_class = BertModel


class BertPromptForQuestionAnswering(PrefixModelForQuestionAnswering, BertPreTrainedModel):
    config_class = BertPromptConfig
    backbone_class = BertModel
