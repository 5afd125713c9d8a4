/// FNV-1a (64 bits) of the UTF-8 bytes: the same in every process, machine and version (Swift's own
/// `hashValue` is seeded per process). Shards and the daemon's slots are derived from it.
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}
