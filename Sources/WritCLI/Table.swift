/// Aligned text tables; bold header only on a terminal.
enum Table {
    static func render(_ header: [String], _ rows: [[String]], useColor: Bool) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c + String(repeating: " ", count: max(0, widths[i] - c.count))
            }
            .joined(separator: "  ")
        }
        var out = [useColor ? "\u{1B}[1m" + line(header) + "\u{1B}[0m" : line(header)]
        for r in rows { out.append(line(r)) }
        return out.joined(separator: "\n")
    }
}
