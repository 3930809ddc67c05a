"""The CDEP experiments of docs/cdep.md: a decoy feature on real data, COMPAS with race forbidden, decoy digits."""
