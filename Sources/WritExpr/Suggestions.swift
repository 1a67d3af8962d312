/// "Did you mean" help for misspelled names.
public enum Suggestions {
    /// The candidate closest to `name` (optimal string alignment distance: a swap of two
    /// neighbouring letters counts once), when it is close enough to be a likely typo.
    static func closest(to name: String, among candidates: some Sequence<String>) -> String? {
        let limit = name.count <= 3 ? 1 : max(2, name.count / 3)
        var best: (name: String, distance: Int)? = nil
        for candidate in candidates {
            let d = distance(name, candidate)
            if d <= limit, best == nil || d < best!.distance || (d == best!.distance && candidate < best!.name) {
                best = (candidate, d)
            }
        }
        return best?.name
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars)
        let y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous2 = [Int](repeating: 0, count: y.count + 1)
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] {
                    d = min(d, previous2[j - 2] + 1)
                }
                current[j] = d
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[y.count]
    }

    /// The end of an "unknown name" message: `: did you mean 'x'? (known fields: a, b)`, or the
    /// known names alone when none is close.
    static func help(for name: String, among candidates: [String], kind: String) -> String {
        if candidates.isEmpty { return "" }
        let sorted = candidates.sorted()
        let shown = sorted.prefix(12).joined(separator: ", ") + (sorted.count > 12 ? ", …" : "")
        if let match = closest(to: name, among: sorted) {
            return ": did you mean '\(match)'? (known \(kind): \(shown))"
        }
        return ": the known \(kind) are \(shown)"
    }
}
