"""The pieces of the end-to-end tuning job (``python -m selfocus_ext.tune``): data selection, evaluation,
figures and reports."""
