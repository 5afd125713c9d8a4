import Foundation
import Git
import Testing
import TestSupport
@testable import MirrorCore

/// The pieces LFS mirroring rests on: pointer parsing and a digest fed in pieces.
@Suite(.onTestThreads) struct LFSUnitTests {
    @Test func pointersAreRecognisedAsTheSpecWritesThem() {
        func parse(_ text: String) -> LFSPointer? { Array(text.utf8).withUnsafeBytes { LFSPointer.parse($0) } }
        let oid = String(repeating: "4d7a", count: 16)
        #expect(parse("version https://git-lfs.github.com/spec/v1\noid sha256:\(oid)\nsize 12345\n") == LFSPointer(oid: oid, size: 12345))
        #expect(parse("version https://git-lfs.github.com/spec/v1\next-0-foo sha256:\(oid)\noid sha256:\(oid)\nsize 1\n")?.size == 1)
        #expect(parse("version https://git-lfs.github.com/spec/v1\noid sha256:\(oid.uppercased())\nsize 1\n") == nil)
        #expect(parse("version https://git-lfs.github.com/spec/v1\noid sha256:\(oid)\n") == nil)
        #expect(parse("just a file that mentions oid sha256:\(oid)\nsize 3\n") == nil)
    }

    @Test func aDigestFedInPiecesEqualsTheDigestOfTheWhole() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let whole = SHA256.hash(data)
        for pieces in [[1, 63, 64, 65, 127], [4096], [0, 64, 0, 1], [9_999]] {
            var digest = SHA256.Incremental()
            var offset = 0
            for size in pieces where offset < data.count {
                let end = min(offset + size, data.count)
                data[offset..<end].withUnsafeBytes { digest.update($0) }
                offset = end
            }
            data[offset...].withUnsafeBytes { digest.update($0) }
            #expect(digest.finish() == whole, "\(pieces)")
        }
        // FIPS 180-2's two-block message
        #expect(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
