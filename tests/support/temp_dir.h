#pragma once
// Test helper: a fresh directory under /tmp, removed with its contents on
// destruction (kept when LOA_KEEP_TEST_FILES is set, for debugging).

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace loa::test {

class TempDir {
public:
    explicit TempDir(const std::string& prefix = "loa-test") {
        std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp");
        path_ = templ;
    }
    ~TempDir() {
        if (std::getenv("LOA_KEEP_TEST_FILES") == nullptr) {
            std::error_code ec;
            std::filesystem::remove_all(path_, ec);
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

}  // namespace loa::test
