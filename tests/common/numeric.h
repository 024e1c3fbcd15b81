// How close two sequences of numbers are, the one way every kernel, engine and cluster test measures it.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>

namespace phx::testing {

// Normalised mean squared error of `got` against `want`: sum (got - want)^2 / sum want^2 (the plain squared error
// where `want` is all zeros). The sizes must agree.
template <typename Got, typename Want>
double nmse(const Got& got, const Want& want) {
  EXPECT_EQ(std::size(got), std::size(want)) << "nmse of sequences of different lengths";
  double error = 0, energy = 0;
  for (size_t i = 0; i < std::min<size_t>(std::size(got), std::size(want)); ++i) {
    const double d = double(got[i]) - double(want[i]);
    error += d * d;
    energy += double(want[i]) * double(want[i]);
  }
  return energy > 0 ? error / energy : error;
}

}  // namespace phx::testing
