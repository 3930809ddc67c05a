"""``python -m studies.senn_study <stage>``: the study's command line (:mod:`studies.senn_study.cli`)."""

from studies.senn_study.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
