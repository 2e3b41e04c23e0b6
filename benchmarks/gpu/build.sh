#!/usr/bin/env bash
# Sourced by the GPU scripts: builds selfocus_ext with its CUDA part on the lent machine and checks that the
# CUDA part is there. Expects $OUT and a `log` file; appends to both. Returns non-zero when the build fails.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
# Build with the compiler torch was built with (the system g++ on the lent image). A toolchain that links
# libstdc++ statically into _C (the image's CXX=/opt/gcc) builds fine but crashes on the first C++ exception
# thrown from an op: the error has to unwind into torch's own libstdc++.
if [ -x /usr/bin/g++ ] && [ -z "${SELFOCUS_KEEP_CXX:-}" ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++; fi
build_cuda() {
  echo "compiler: $(${CXX:-g++} --version | head -1)" | tee -a "$log"
  rm -rf build/temp.*
  local build_log="$OUT/gpu-build.log" t0=$SECONDS
  if ! python3 -m pip install --no-build-isolation --no-deps -e . >"$build_log" 2>&1; then
    python3 setup.py build_ext --inplace >>"$build_log" 2>&1 || {
      grep -E "error|Error" "$build_log" | head -40 | tee -a "$log"; echo "build failed" | tee -a "$log"; return 1; }
  fi
  echo "build took $((SECONDS - t0)) s" | tee -a "$log"
  ldd selfocus_ext/_C*.so | grep -q libstdc++ || echo "warning: _C does not link libstdc++ dynamically" | tee -a "$log"
  python3 -c "import selfocus_ext as s; assert s.ops.cuda_compiled(), 'CUDA part not built'; print('cuda_compiled', True)" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}
