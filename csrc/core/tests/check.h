// A minimal assertion harness for the core's C++ tests (ctest runs each test binary).
#pragma once

#include <cmath>
#include <cstdio>

namespace selfocus_test {
inline int& failures() {
  static int n = 0;
  return n;
}
}  // namespace selfocus_test

#define SF_FAIL(msg_fmt, ...)                                                              \
  do {                                                                                    \
    if (++selfocus_test::failures() <= 20)                                                \
      std::fprintf(stderr, "%s:%d: " msg_fmt "\n", __FILE__, __LINE__, __VA_ARGS__);      \
  } while (0)

#define CHECK(cond) \
  do {              \
    if (!(cond)) SF_FAIL("CHECK(%s) failed", #cond); \
  } while (0)

#define CHECK_EQ(a, b)                                                                        \
  do {                                                                                        \
    const auto va_ = (a);                                                                     \
    const auto vb_ = (b);                                                                     \
    if (!(va_ == vb_)) SF_FAIL("CHECK_EQ(%s, %s): %.9g != %.9g", #a, #b, (double)va_, (double)vb_); \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                 \
  do {                                                                                        \
    const double va_ = (a), vb_ = (b);                                                        \
    if (!(std::fabs(va_ - vb_) <= (tol)))                                                     \
      SF_FAIL("CHECK_NEAR(%s, %s): %.9g vs %.9g (tol %.3g)", #a, #b, va_, vb_, (double)(tol)); \
  } while (0)

#define CHECK_NEAR_REL(a, b, rtol) CHECK_NEAR(a, b, (rtol) * std::fabs((double)(b)))

#define RUN(fn)                                \
  do {                                         \
    const int before_ = selfocus_test::failures(); \
    fn();                                      \
    std::printf("%s %s\n", selfocus_test::failures() == before_ ? "PASS" : "FAIL", #fn); \
  } while (0)

inline int report() { return selfocus_test::failures() == 0 ? 0 : 1; }
