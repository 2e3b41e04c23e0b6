// Per-image TP/FP/FN from the official CULane evaluator's own code. It is compiled together with the
// unmodified official sources (src/*.cpp, evaluate.cpp with its main renamed), so every lane is read,
// rasterised and matched by the official functions; only the loop and the output are ours.
//
//   per_image_counts GT_ROOT PRED_ROOT LIST WIDTH HEIGHT LANE_WIDTH IOU [iou]
//   -> "tp fp fn" per list line; with "iou", followed by the official similarity of every (GT, prediction)
//      pair, row by row (%.17g), for locating a difference.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "counter.hpp"
#include "lane_compare.hpp"

void read_lane_file(const std::string& file_name, std::vector<std::vector<cv::Point2f> >& lanes);

int main(int argc, char** argv) {
  const bool with_iou = argc == 9 && std::string(argv[8]) == "iou";
  if (argc != 8 && !with_iou) {
    std::cerr << "usage: per_image_counts GT_ROOT PRED_ROOT LIST WIDTH HEIGHT LANE_WIDTH IOU [iou]\n";
    return 2;
  }
  const std::string gt_root = argv[1], pred_root = argv[2];
  std::ifstream list(argv[3]);
  if (!list) {
    std::cerr << "cannot read " << argv[3] << "\n";
    return 2;
  }
  std::vector<std::string> images;
  for (std::string line; std::getline(list, line);) images.push_back(line);
  Counter counter(std::atoi(argv[4]), std::atoi(argv[5]), std::atof(argv[7]), std::atoi(argv[6]));
  LaneCompare compare(std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]), LaneCompare::IOU);
  std::vector<std::tuple<long, long, long>> counts(images.size());
  std::vector<std::string> ious(images.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string txt = images[i].substr(0, images[i].find_last_of(".")) + ".lines.txt";
    std::vector<std::vector<cv::Point2f> > gt, pred;
    read_lane_file(gt_root + txt, gt);
    read_lane_file(pred_root + txt, pred);
    auto r = counter.count_im_pair(gt, pred);
    counts[i] = std::make_tuple(std::get<1>(r), std::get<2>(r), std::get<4>(r));
    if (with_iou) {
      char buf[32];
      for (const auto& g : gt) {
        for (const auto& p : pred) {
          std::snprintf(buf, sizeof buf, " %.17g", compare.get_lane_similarity(g, p));
          ious[i] += buf;
        }
      }
    }
  }
  for (size_t i = 0; i < images.size(); ++i) {
    std::cout << std::get<0>(counts[i]) << " " << std::get<1>(counts[i]) << " " << std::get<2>(counts[i]);
    if (with_iou) std::cout << " |" << ious[i];
    std::cout << "\n";
  }
  return 0;
}
