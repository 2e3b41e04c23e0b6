"""Cached FP lanes and calibrations are keyed by what decodes them too: a changed decoder or lane capacity
does not meet the lanes of the old one."""
from selfocus_ext import models
from selfocus_ext.models import published
from selfocus_ext.workflow.job import decoding_signature


def test_the_signature_follows_the_decoder_and_the_lane_capacity():
    ganet, laneatt = models.build("ganet-s"), models.build("laneatt-s")
    assert decoding_signature(ganet) == decoding_signature(models.build("ganet-s"))
    assert decoding_signature(ganet) != decoding_signature(laneatt)
    condlane = published.published("condlane-r18").build_at((224, 72))
    before = decoding_signature(condlane)
    condlane.max_lanes = 32
    assert decoding_signature(condlane) != before
