"""The workshop around the ReFine-RFT pipeline: toy data, toy models, the CPU demo and the test harness.

Everything here builds on the installed ``refine_rft`` package and nothing there imports it back:

- :mod:`.synthetic` / :mod:`.synthetic_cli`: the synthetic birds (``refine-rft-workshop synthetic``);
- :mod:`.tiny`, :mod:`.tiny_cli`, :mod:`.image_only_processor`: random-weight tiny VLMs
  (``refine-rft-workshop tiny-model``); :mod:`.published`: tiny models with a published model's
  vision dimensions;
- :mod:`.instruct` and ``tiny_instruct/``: the shipped tiny instruct base (built by
  ``refine-rft-workshop build-base``, :mod:`.base`);
- :mod:`.base`: the base builder (``refine-rft-workshop build-base``): its instruction data, build
  aids, measured profile and card;
- :mod:`.demo`: ``refine-rft-workshop demo``, a thin driver running ``refine-rft`` commands on the above;
- :mod:`.testing`: a scripted OpenAI-compatible judge server, fake dataset layouts, a browser check.

>>> tiny_instruct_path().name
'tiny_instruct'
"""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).with_name("recipes")


def tiny_instruct_path() -> Path:
    """The shipped tiny instruct base's folder, checked against its checksums."""
    from refine_rft_workshop.instruct import instruct_model_path

    return instruct_model_path()


def toy_words() -> list[str]:
    """The words that name the toy world, from the workshop's own vocabulary: its model names
    (``tiny:instruct``, ``tiny:<arch>``), the functions that make its data, its species' names and
    the opening of its reference reasoning. The pipeline's code says none of them (the layout test).

    >>> words = toy_words()
    >>> "tiny:instruct" in words and "synthetic_questions" in words and "The bird has" in words
    True
    """
    from refine_rft_workshop import synthetic
    from refine_rft_workshop.models import TINY_PREFIX
    from refine_rft_workshop.tiny import ARCHS

    makers = [synthetic.synthetic_questions, synthetic.synthetic_base_to_new, synthetic.synthetic_class_list,
              synthetic.make_species, synthetic.draw_bird]
    return ([f"{TINY_PREFIX}{name}" for name in ("instruct", *ARCHS)] + [maker.__name__ for maker in makers]
            + [species.name for species in synthetic.make_species(48, seed=0)] + [synthetic.REASONING_OPENING])
