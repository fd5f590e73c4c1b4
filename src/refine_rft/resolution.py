"""One image resolution for training, evaluation and general VQA.

Qwen-VL processors resize every image to a grid of ``factor`` x ``factor`` pixel cells
(``patch_size * merge_size``: 28 for Qwen2-VL) whose area lies within ``[min_pixels, max_pixels]``;
each cell is one image token. The processor's own default admits 16,384 tokens, far more than a
fine-grained image needs and more than a 2,048-token SFT sequence holds. A recipe therefore sets
``max_pixels`` / ``min_pixels``, and every path that shows the policy an image uses them:

- the processor (TRL's GRPO and SFT trainers, ``refine-rft eval --backend hf``, ``predict``) is
  loaded with them (as ``min_pixels`` / ``max_pixels``, which win over a hub config's own bounds in
  either of its forms), and saves them beside the adapter and in an export, so it tokenises each
  image into at most ``max_pixels / factor**2`` tokens;
- images are also resized to that grid before they reach any engine (:meth:`ImageResolution.fit`),
  so that vLLM, whose processor TRL builds from the hub config without these settings, receives an
  image its own (wider) bounds leave as it is, and counts the same tokens as the trainer;
- vLLM's engine in ``refine-rft eval --backend vllm`` also gets them as ``mm_processor_kwargs``;
- the general-VQA harnesses receive them as model arguments.

>>> r = ImageResolution(min_pixels=56 * 56, max_pixels=28 * 28 * 4)
>>> r.grid(1500, 2000)   # height, width -> the resized height, width
(28, 56)
>>> r.max_tokens()
4
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import ConfigError

# Qwen2-VL's defaults (its preprocessor_config.json): 4 to 16,384 tokens of 28 x 28 pixels.
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 16384
QWEN2_VL_FACTOR = 28


@dataclass(frozen=True)
class ImageResolution:
    """Pixel bounds of one image (``None``: the processor's own default)."""

    min_pixels: int | None = None
    max_pixels: int | None = None
    factor: int = QWEN2_VL_FACTOR

    def __post_init__(self):
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < self.factor ** 2):
                raise ConfigError(f"{name} must be an integer >= {self.factor ** 2} (one {self.factor} x "
                                 f"{self.factor} image token), got {value!r}")
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise ConfigError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})")

    @property
    def is_set(self) -> bool:
        return self.min_pixels is not None or self.max_pixels is not None

    def processor_kwargs(self) -> dict:
        """The bounds that are set, by their Qwen-VL names (vLLM's ``mm_processor_kwargs``, the harnesses'
        model arguments).

        >>> ImageResolution(max_pixels=1003520).processor_kwargs()
        {'max_pixels': 1003520}
        """
        return {k: v for k, v in (("min_pixels", self.min_pixels), ("max_pixels", self.max_pixels)) if v is not None}

    def from_pretrained_kwargs(self) -> dict:
        """Keyword arguments for ``AutoProcessor.from_pretrained``: the bounds that are set, as
        ``min_pixels`` / ``max_pixels``.

        Not as ``size``: a hub Qwen2/2.5-VL ``preprocessor_config.json`` names its bounds top-level
        (``min_pixels`` / ``max_pixels``), and the image processor lets those override ``size``, so a
        ``size`` argument would be silently replaced by the hub's 16,384-token bound, and the processor
        saved beside the adapter would carry it. ``min_pixels`` / ``max_pixels`` override either form
        (Qwen3-VL's config holds ``size: {shortest_edge, longest_edge}`` only) one bound at a time; a
        bound left unset stays the model's own (Qwen3-VL's differs from Qwen2-VL's).

        >>> ImageResolution(max_pixels=1003520).from_pretrained_kwargs()
        {'max_pixels': 1003520}
        >>> ImageResolution().from_pretrained_kwargs()
        {}
        """
        return self.processor_kwargs()

    def load_processor(self, model_path: str, trust_remote_code: bool = False, **kwargs):
        """The processor of ``model_path`` with these bounds on its image processor (code in the
        folder runs only as :func:`refine_rft.trust.load_processor` decides).

        ``from_pretrained`` also hands its keyword arguments to the tokenizer, which would save them in
        ``tokenizer_config.json`` and pass them back into every processor call (where transformers
        deprecates them); the image processor's ``size`` is where the bounds belong, so they are taken
        back out of the tokenizer's.
        """
        from refine_rft.trust import load_processor

        bounds = self.from_pretrained_kwargs()
        processor = load_processor(model_path, trust_remote_code, **bounds, **kwargs)
        tokenizer = getattr(processor, "tokenizer", None)
        for key in bounds:
            getattr(tokenizer, "init_kwargs", {}).pop(key, None)
        return processor

    def for_processor(self, processor) -> ImageResolution:
        """This resolution on ``processor``'s token grid (``patch_size * merge_size`` pixels), an unset
        bound filled with the processor's own, so that :meth:`fit` resizes exactly as the processor does.
        Unset resolutions stay unset (images pass unchanged)."""
        factor = processor_factor(processor)
        if not self.is_set:
            return self.with_factor(factor)
        size = getattr(processor.image_processor, "size", None) or {}
        return ImageResolution(self.min_pixels or size.get("shortest_edge"),
                               self.max_pixels or size.get("longest_edge"), factor)

    def with_factor(self, factor: int) -> ImageResolution:
        return ImageResolution(self.min_pixels, self.max_pixels, factor)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The size the Qwen-VL processor resizes a ``height`` x ``width`` image to (transformers'
        ``smart_resize``), with this resolution's bounds."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        return smart_resize(height, width, factor=self.factor, min_pixels=self.min_pixels or QWEN_MIN_PIXELS,
                            max_pixels=self.max_pixels or QWEN_MAX_PIXELS)

    def max_tokens(self) -> int:
        """The most image tokens one image can become."""
        return (self.max_pixels or QWEN_MAX_PIXELS) // self.factor ** 2

    def fit(self, image):
        """``image`` (PIL) resized to the grid the processor would use; unchanged when it already fits
        or when no bound is set. A processor with the same or wider bounds then leaves it as it is."""
        if not self.is_set:
            return image
        height, width = self.grid(image.height, image.width)
        if (height, width) == (image.height, image.width):
            return image
        from PIL import Image

        return image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


# The resolved recipe a training run saves beside its adapter (and an export beside the merged model);
# defined here, below training, so that evaluation can read a run's resolution without importing training.
SAVED_CONFIG_NAME = "refine_rft_config.yaml"


def processor_factor(processor) -> int:
    """Pixels per image-token side of a Qwen-VL processor (``patch_size * merge_size``)."""
    image_processor = processor.image_processor
    return int(image_processor.patch_size) * int(getattr(image_processor, "merge_size", 1) or 1)


def resolution_of_run(folder: str | os.PathLike | None) -> ImageResolution:
    """The resolution a training run used, from the ``refine_rft_config.yaml`` saved beside its adapter
    (or a merged export of it); an unset resolution when the folder has none."""
    import yaml

    if folder is None or not (Path(folder) / SAVED_CONFIG_NAME).is_file():
        return ImageResolution()
    path = Path(folder) / SAVED_CONFIG_NAME
    script = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("script") or {}
    return ImageResolution(script.get("min_pixels"), script.get("max_pixels"))


@dataclass
class ResolutionArguments:
    """``--max-pixels`` / ``--min-pixels`` of the commands that show a model images (default: the
    training run's, :func:`choose_resolution`)."""

    max_pixels: int | None = field(default=None, metadata={
        "help": "largest image area in pixels, e.g. 1003520 = 1280*28*28 (default: the value saved with the "
                "adapter's or merged model's training run, else the processor's default)"})
    min_pixels: int | None = field(default=None, metadata={
        "help": "smallest image area in pixels, e.g. 200704 = 256*28*28 (default: as for --max-pixels)"})


def choose_resolution(min_pixels: int | None, max_pixels: int | None, *run_folders) -> ImageResolution:
    """Command-line bounds where given, else those of the first run folder that saved a resolution.

    >>> choose_resolution(None, 1003520, None)
    ImageResolution(min_pixels=None, max_pixels=1003520, factor=28)
    """
    if min_pixels is not None or max_pixels is not None:
        return ImageResolution(min_pixels, max_pixels)
    for folder in run_folders:
        saved = resolution_of_run(folder)
        if saved.is_set:
            return saved
    return ImageResolution()
