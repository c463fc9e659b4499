// Randomness for bearer secrets. The domain asks an interface, so tests can
// drive ID generation deterministically (collisions, sequences) while production
// uses the kernel's CSPRNG.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sm::domain {

class RandomSource {
public:
    virtual ~RandomSource() = default;
    /// A uniformly random 64-bit value.
    virtual std::uint64_t next64() = 0;
};

/// getrandom(2), read in blocks so that a million IDs cost a few hundred syscalls.
/// Throws std::system_error if the kernel refuses.
class SystemRandom final : public RandomSource {
public:
    std::uint64_t next64() override;

private:
    std::vector<std::uint64_t> buffer_;
    std::size_t pos_ = 0;
};

/// Uniform integer in [0, bound) without modulo bias.
std::uint64_t uniformBelow(RandomSource& random, std::uint64_t bound);

}  // namespace sm::domain
