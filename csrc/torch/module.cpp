// The Python module selfocus_ext._C. Loading it registers the torch.ops.selfocus.* operators; the few
// functions below report how the extension was built and switch the device-side value checks.
#include <torch/extension.h>

#include "op_args.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "selfocus_ext native extension: registers torch.ops.selfocus.*";
  m.def(
      "cuda_compiled", []() {
#ifdef SELFOCUS_WITH_CUDA
        return true;
#else
        return false;
#endif
      },
      "Whether the CUDA implementations were compiled into this build.");
  m.def("set_device_value_checks", &selfocus::glue::set_device_value_checks, pybind11::arg("enabled"),
        "Check scale/step values on non-CPU devices (one device-to-host sync per op call). On by default.");
  m.def("device_value_checks_enabled", &selfocus::glue::device_value_checks_enabled);
}
