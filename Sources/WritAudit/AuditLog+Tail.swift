import Glibc
import WritStore

/// The newest records of the audit log's current file, as `AuditLog.tail` read them.
public struct AuditTail: Sendable {
    /// The records kept, oldest first.
    public var lines: [String] = []
    /// Whether the read went back as far as it was asked to (the start of the file, or the first
    /// record before `since`); false when it stopped at its byte or record budget.
    public var complete = false
    /// Bytes read.
    public var scannedBytes = 0
}

extension AuditLog {
    /// The newest records of the current file that `keep` accepts, read backwards from the end in
    /// 256 KiB chunks: at most `maxBytes` read and `maxRecords` kept, so the cost of one call is
    /// bounded whatever the log's size. Reading stops at the first record older than `since`.
    /// `mentioning`, when given, is a cheap byte-level pre-filter: lines without it are skipped
    /// before `keep` parses them. A last line without its newline (an append in progress) is
    /// skipped.
    public func tail(
        since: Int64? = nil,
        maxBytes: Int,
        maxRecords: Int,
        mentioning needle: String? = nil,
        keep: (String) -> Bool
    ) throws(StoreError) -> AuditTail {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return AuditTail(complete: true) }
            throw errno == ELOOP ? .symlink(path: path) : .unreadable(path: path, errno: errno)
        }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return AuditTail(complete: true) }
        let pattern = needle.map { Array($0.utf8) }
        var out = AuditTail()
        var newestFirst: [String] = []
        var end = size
        var carry: [UInt8] = []  // the start of a line whose beginning is in an earlier chunk
        var atEnd = true
        let chunkSize: off_t = 256 << 10
        scan: while end > 0 {
            let start = max(0, end - chunkSize)
            var chunk = [UInt8](repeating: 0, count: Int(end - start))
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, start) }
            guard n == chunk.count else { throw .unreadable(path: path, errno: errno) }
            out.scannedBytes += n
            chunk += carry
            if atEnd {
                // The last line counts only when complete (it may be longer than a chunk).
                if let last = chunk.lastIndex(of: 0x0A) {
                    chunk.removeSubrange((last + 1)...)
                    atEnd = false
                } else {
                    chunk = []
                }
            }
            // Lines wholly inside the chunk, newest first; the first piece may continue earlier.
            var lineEnd = chunk.count
            var i = chunk.count - 1
            while i >= 0 {
                if chunk[i] == 0x0A {
                    if lineEnd > i + 1 {
                        let line = chunk[(i + 1)..<lineEnd]
                        if let since, let time = Self.time(of: line), time < since {
                            out.complete = true
                            break scan
                        }
                        if pattern.map({ Self.contains(line, $0) }) ?? true {
                            let text = String(decoding: line, as: UTF8.self)
                            if keep(text) {
                                newestFirst.append(text)
                                if newestFirst.count >= maxRecords { break scan }
                            }
                        }
                    }
                    lineEnd = i
                }
                i -= 1
            }
            carry = Array(chunk[0..<lineEnd])
            end = start
            if end == 0 {
                // The file's first line.
                if !carry.isEmpty {
                    let line = carry[...]
                    let old = since.flatMap { s in Self.time(of: line).map { $0 < s } } ?? false
                    if !old, pattern.map({ Self.contains(line, $0) }) ?? true {
                        let text = String(decoding: line, as: UTF8.self)
                        if keep(text), newestFirst.count < maxRecords { newestFirst.append(text) }
                    }
                }
                out.complete = true
                break
            }
            if out.scannedBytes >= maxBytes { break }
        }
        out.lines = newestFirst.reversed()
        return out
    }

    /// A record's `time` (`{"seq":N,"prev":"<64 hex>","time":T,…`), without parsing the rest.
    static func time(of line: ArraySlice<UInt8>) -> Int64? {
        let key = Array("\"time\":".utf8)
        var i = line.startIndex
        // The time follows seq (up to 19 digits) and prev (64 hex): within the first 120 bytes.
        let limit = min(line.endIndex, line.startIndex + 120)
        while i + key.count <= limit {
            if line[i] == key[0] && line[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count
                var value: Int64 = 0
                var digits = 0
                while j < line.endIndex, line[j] >= 0x30, line[j] <= 0x39, digits < 18 {
                    value = value * 10 + Int64(line[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }

    /// Whether `haystack` contains `needle` (bytes).
    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return needle.isEmpty }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
