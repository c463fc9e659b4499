// Access IDs and Contract IDs: generation, validation, masking, display names.
// Both are bearer secrets (DOMAIN.md): drawn from a CSPRNG, never sequential,
// never written in clear outside the mail that carries them.
#pragma once

#include <string>
#include <string_view>

#include "domain/secure_random.h"

namespace sm::domain {

/// Exactly 10 ASCII digits. "0230242323" is valid; "230242323" is not.
bool isValidAccessId(std::string_view s);

/// 10 uniformly random digits (leading zeros kept). Uniqueness is the caller's
/// job (the store has a unique index; the generator retries on a clash).
std::string generateAccessId(RandomSource& random);

/// Contract IDs: "C-" followed by 10 characters of an unambiguous upper-case
/// alphabet (no 0/O, 1/I/L), e.g. "C-7KQ2M9XH4T".
bool isValidContractId(std::string_view s);
std::string generateContractId(RandomSource& random);

/// Upper-cases and trims what a person typed; keeps it a string.
std::string normalizeContractId(std::string_view s);

/// "0037xxxxxx": the first four digits, the rest masked. Anything that is not a
/// valid Access ID is masked whole.
std::string maskAccessId(std::string_view accessId);
/// "C-7Kxxxxxxxx".
std::string maskContractId(std::string_view contractId);

/// DOMAIN.md display name: two-digit year, contract type, partner ID, "unk", the
/// masked Access ID: "26 SCS-4648141-unk (0037xxxxxx)".
std::string displayName(int year, std::string_view typeCode, std::string_view partnerId,
                        std::string_view accessId);

}  // namespace sm::domain
