"""What the experiment scripts share: errors, command-line flags, the results schema, HPO and sweeps."""
