"""Helpers shared by the tests, the benchmarks and the scripts (none of them imports another's files): the
plain-torch composites the fused ops are timed against, head outputs made from training targets (a decoder's
oracle), and the official CULane evaluator built from its sources."""
