"""The official CULane evaluator as a test oracle: building it, generating CULane-layout cases, comparing."""
