#pragma once
// Test helper: sine WAV files to feed the programs and the control calls,
// and a file's bytes.

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "loa/codecs/wav_writer.h"

namespace loa::test {

/// Writes `seconds` of a sine at `hz` as a 48 kHz mono 16-bit WAV.
inline void write_sine(const std::filesystem::path& path, double hz, double seconds, double amplitude = 0.5) {
    loa::codecs::WavWriter w(path, loa::codecs::WavSampleFormat::Pcm16, 48000, 1);
    std::vector<float> buf(static_cast<std::size_t>(seconds * 48000));
    for (std::size_t i = 0; i < buf.size(); ++i) {
        buf[i] = static_cast<float>(amplitude * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / 48000.0));
    }
    REQUIRE(w.write(buf) == loa::codecs::Status::Ok);
    REQUIRE(w.close() == loa::codecs::Status::Ok);
}

/// The whole content of a file.
inline std::string file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace loa::test
