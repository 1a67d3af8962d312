import FoundationEssentials
import Glibc
import WritAudit
import WritCore
import WritEngine
import WritStore

/// Audit records go through an outbox in writd's database: a record is inserted in the same
/// transaction as the change it describes, then appended to the hash-chained log and deleted
/// from the outbox. A SIGKILL between the commit and the append leaves it in the outbox, and the
/// next start appends it; a SIGKILL between the append and the delete is recognised by the
/// record's id on the log's last line, so nothing is lost and nothing is written twice.
struct AuditSink {
    let log: AuditLog
    /// Called with every queued record, in the same transaction: Slack's outbox follows the
    /// audit trail, so a decision and the message about it commit together.
    var follower: (@Sendable (SQLiteDatabase, AuditEvent) throws(StoreError) -> Void)? = nil

    /// Queues a record; call inside the transaction that makes the change.
    func queue(_ db: SQLiteDatabase, _ event: AuditEvent) throws(StoreError) {
        try follower?(db, event)
        let id = AuditEvent.newID()
        let s = try db.prepare("INSERT INTO d.outbox (id, time, event, actor, fields) VALUES (?1, ?2, ?3, ?4, ?5)")
        try s.bind(1, id)
        try s.bind(2, event.time)
        try s.bind(3, event.event)
        try s.bind(4, event.actor)
        try s.bind(5, EngineRequest.encodeJSON(event.fields.map { [$0.name, $0.value] }))
        _ = try s.step()
    }

    /// Appends every queued record to the log, oldest first. Returns how many were appended.
    /// On a failure (disk full, log tampered with) the rest stay queued and the error says why.
    @discardableResult
    func flush(_ db: SQLiteDatabase) throws(StoreError) -> Int {
        let s = try db.prepare("SELECT seq, id, time, event, actor, fields FROM d.outbox ORDER BY seq")
        var rows: [(seq: Int64, id: String, event: AuditEvent)] = []
        while try s.step() {
            let pairs = EngineRequest.decodeJSON([[String]].self, s.string(5)) ?? []
            var fields = [AuditEvent.Field("id", s.string(1))]
            fields += pairs.compactMap { $0.count == 2 ? AuditEvent.Field($0[0], $0[1]) : nil }
            rows.append(
                (
                    s.int64(0), s.string(1),
                    AuditEvent(time: s.int64(2), event: s.string(3), actor: s.string(4), fields: fields)
                )
            )
        }
        guard !rows.isEmpty else { return 0 }
        // The first queued record may already be in the log: a crash (or a failed delete) after
        // the append. The log's last line says so; only its tail is read.
        let lastLine = try log.lastRecord()
        var appended = 0
        for row in rows {
            if appended == 0, let lastLine, lastLine.contains("\"id\":\"\(row.id)\"") {
                // Appended before a crash, not yet deleted: do not write it twice.
                try delete(db, seq: row.seq)
                continue
            }
            let (seq, hash) = try log.append(row.event)
            try delete(db, seq: row.seq)
            appended += 1
            // The head hash leaves the host's file: an attacker who rewrites the whole chain
            // cannot also rewrite what syslog already shipped.
            Syslog.log(LOG_INFO, "audit seq=\(seq) hash=\(hash) event=\(row.event.event)")
        }
        return appended
    }

    private func delete(_ db: SQLiteDatabase, seq: Int64) throws(StoreError) {
        let d = try db.prepare("DELETE FROM d.outbox WHERE seq = ?1")
        try d.bind(1, seq)
        _ = try d.step()
    }
}
