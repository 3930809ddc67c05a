"""Tables and figures from a results tree: method styles (``plots.style``) and the comparison (``plots.comparison``)."""
