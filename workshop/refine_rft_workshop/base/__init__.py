"""The tiny instruct base's builder: ``refine-rft-workshop build-base``.

The demo starts from an instruct model, as the paper does; this package makes the one the workshop
ships (``tiny_instruct/``, loaded by :mod:`refine_rft_workshop.instruct`). :mod:`.build_base` is the
command and its training loop, :mod:`.instruct_data` the instruction mix, :mod:`.build_aids` the
build-time aids (none is part of the saved model), :mod:`.base_profile` measures the base's starting
point against its targets and :mod:`.base_card` writes its card. Nothing here runs at demo time.
"""
