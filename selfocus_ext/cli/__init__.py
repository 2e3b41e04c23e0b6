"""The command layer: argument parsing and the commands' bodies. Nothing below imports it."""
