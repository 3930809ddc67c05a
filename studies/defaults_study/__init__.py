"""The defaults study of issue 15: orchestration (``run_study.py``), tables and figures (``tabulate.py``) and issue 24's
choice on the selection half with the report half's tables (``halves.py``)."""
