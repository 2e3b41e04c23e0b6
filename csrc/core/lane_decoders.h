// Every family's per-image lane decoder (csrc/core/decoders/: one header per family, common.h for what
// they share), for the CPU op and the CUDA kernels that run them.
#pragma once

#include "decoders/ganet.h"
#include "decoders/laneatt.h"
#include "decoders/bezier.h"
#include "decoders/lstr.h"
#include "decoders/condlane.h"
#include "decoders/scnn.h"
#include "decoders/published/ufld.h"
#include "decoders/published/lstr.h"
#include "decoders/published/bezier.h"
#include "decoders/published/segmentation.h"
#include "decoders/published/anchor.h"
#include "decoders/published/ganet.h"
#include "decoders/published/condlane.h"
