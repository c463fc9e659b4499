#include "domain/secure_random.h"

#include <sys/random.h>

#include <cerrno>
#include <system_error>

namespace sm::domain {

std::uint64_t SystemRandom::next64() {
    if (pos_ == buffer_.size()) {
        buffer_.resize(512);
        auto* bytes = reinterpret_cast<unsigned char*>(buffer_.data());
        std::size_t want = buffer_.size() * sizeof(std::uint64_t);
        std::size_t got = 0;
        while (got < want) {
            ssize_t n = getrandom(bytes + got, want - got, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw std::system_error(errno, std::generic_category(), "getrandom");
            }
            got += static_cast<std::size_t>(n);
        }
        pos_ = 0;
    }
    return buffer_[pos_++];
}

std::uint64_t uniformBelow(RandomSource& random, std::uint64_t bound) {
    // Reject the top partial range so every residue is equally likely.
    const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    for (;;) {
        std::uint64_t v = random.next64();
        if (v < limit) return v % bound;
    }
}

}  // namespace sm::domain
