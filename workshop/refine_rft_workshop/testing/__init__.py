"""Test harness that users can reuse to test their own set-up, kept out of the pipeline packages.

- :mod:`.scripted_server`: a real OpenAI-compatible chat-completions server on 127.0.0.1 whose
  replies (scores, 429/500, hangs, dropped connections) are scripted;
- :mod:`.fake_layouts`: the six datasets' official folder layouts, with tiny images;
- :mod:`.browser`: headless Chromium screenshots of the HTML report.
"""
