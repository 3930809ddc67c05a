"""The defaults study of issue 15: orchestration (``run_study.py``) and tables and figures (``tabulate.py``)."""
