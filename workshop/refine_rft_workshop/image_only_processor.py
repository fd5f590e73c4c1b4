"""Image-only Qwen-VL processors (copied next to a tiny model's weights as remote code).

The stock Qwen-VL processors also construct a video processor, which imports torchvision; on a
CPU machine without torchvision that import fails. These subclasses take only an image processor
(the PIL one) and a tokenizer, and are otherwise the stock processors. Load them with
``AutoProcessor.from_pretrained(path, trust_remote_code=True)``. Without ``trust_remote_code``,
transformers (5.x) refuses: ``ValueError: The repository ... contains custom code which must be
executed to correctly load the model ... pass the argument trust_remote_code=True`` (on an
interactive terminal it first asks whether to run it). It never falls back to the tokenizer.

Only the tiny models carry this file. A real Qwen2-VL checkpoint uses the stock processor, and
``refine-rft export`` of an adapter trained on it writes no custom code.

This file must import nothing but transformers: it is executed from the model folder.
"""

from transformers import ProcessorMixin
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor


def _init_image_only(processor, image_processor, tokenizer, chat_template):
    processor.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
    processor.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
    processor.image_token_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    processor.video_token_id = tokenizer.convert_tokens_to_ids(processor.video_token)
    processor.video_processor = None
    ProcessorMixin.__init__(processor, image_processor, tokenizer, chat_template=chat_template)


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        _init_image_only(self, image_processor, tokenizer, chat_template)


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        _init_image_only(self, image_processor, tokenizer, chat_template)


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        _init_image_only(self, image_processor, tokenizer, chat_template)
        self.vision_start_token = getattr(tokenizer, "vision_start_token", None) or "<|vision_start|>"
        self.vision_end_token = getattr(tokenizer, "vision_end_token", None) or "<|vision_end|>"
        self.vision_start_token_id = tokenizer.convert_tokens_to_ids(self.vision_start_token)
        self.vision_end_token_id = tokenizer.convert_tokens_to_ids(self.vision_end_token)
