"""The studies behind ``docs/*.md``: applications of the library, each resumable, results outside the repository.

``cdep`` (explanation penalties, docs/cdep.md), ``defaults_study`` (docs/defaults.md), ``faithfulness`` and
``two_moons`` (docs/interpretability.md), ``senn_study`` (docs/senn.md) and ``xai_bench`` (the XAI-Bench protocol,
docs/xai_benchmark.md). Each runs as a module from the repository root, e.g.
``python -m studies.cdep.decoy_feature --help``.
"""
