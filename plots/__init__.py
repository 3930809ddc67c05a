"""Tables and figures from a results tree.

``plots.style`` (labels and colours from the method registry), ``plots.stats`` (coverage, ranks, tests, gains,
times, feature rankings), ``plots.tables`` (Markdown and LaTeX), ``plots.figures`` (every ``plot_*`` draws on a
given axis), ``plots.explanations`` (explanation figures of any method) and ``plots.comparison`` (the command line).
"""
