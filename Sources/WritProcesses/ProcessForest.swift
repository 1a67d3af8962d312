/// What `ProcessForest` needs of a process.
protocol ProcessNode {
    var identity: ProcessIdentity { get }
    var ppid: Int32 { get }
}

extension ProcessInfo: ProcessNode {}
extension StatRecord: ProcessNode {}

/// A snapshot of processes, indexed by pid and by parent, to walk process trees.
struct ProcessForest<Node: ProcessNode> {
    private let nodes: [Node]
    private let indexByPID: [Int32: Int]
    private let childrenByPID: [Int32: [Int]]

    init(_ nodes: [Node]) {
        self.nodes = nodes
        var indexByPID: [Int32: Int] = [:]
        var childrenByPID: [Int32: [Int]] = [:]
        for (index, node) in nodes.enumerated() {
            indexByPID[node.identity.pid] = index
            childrenByPID[node.ppid, default: []].append(index)
        }
        self.indexByPID = indexByPID
        self.childrenByPID = childrenByPID
    }

    /// `root` and its descendants, root first; empty when `root` is not in the snapshot with this
    /// start time. A child must have started no earlier than its parent (see `ProcessTable.tree`).
    func tree(of root: ProcessIdentity) -> [Node] {
        guard let rootIndex = indexByPID[root.pid], nodes[rootIndex].identity == root else { return [] }
        var result = [nodes[rootIndex]]
        var visited: Set<Int32> = [root.pid]
        var pending = [rootIndex]
        while let parentIndex = pending.popLast() {
            let parent = nodes[parentIndex].identity
            for childIndex in childrenByPID[parent.pid] ?? [] {
                let child = nodes[childIndex].identity
                guard child.startTime >= parent.startTime, visited.insert(child.pid).inserted else { continue }
                result.append(nodes[childIndex])
                pending.append(childIndex)
            }
        }
        return result
    }
}
