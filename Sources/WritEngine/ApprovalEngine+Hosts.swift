import Crypto
import WritAudit
import WritCore

/// A host of the fleet, as writ-server knows it. Agent routes take the host from its client
/// certificate and then ask whether it may still be served (`hostMayConnect`).
public struct EngineHost: Sendable, Equatable, Codable {
    public var name: String
    public var enabled: Bool
    /// When it last enrolled (a new key and certificate).
    public var enrolledAt: Int64?
    /// Who disabled it, and when, while it is disabled.
    public var disabledAt: Int64?
    public var disabledBy: String?
    /// The SHA-256 of the public key it enrolled with (hex): the only key its certificates may
    /// carry. Enrolling again replaces it, so certificates of an earlier enrollment are refused
    /// even before they end. Renewal keeps the key.
    public var keyFingerprint: String?

    public init(name: String, enabled: Bool = true, enrolledAt: Int64? = nil) {
        self.name = name
        self.enabled = enabled
        self.enrolledAt = enrolledAt
    }

    /// As the stores keep it (JSON text), like `EngineGrant.document`.
    public var document: String { EngineRequest.encodeJSON(self) }

    public init(document text: String) throws(EngineError) {
        guard let h = EngineRequest.decodeJSON(EngineHost.self, text) else {
            throw .corrupt("a stored host does not decode")
        }
        self = h
    }
}

/// A one-time enrollment token, as stored: only its SHA-256, never the token.
public struct Enrollment: Sendable, Equatable {
    public var tokenHash: String
    public var host: String
    public var createdAt: Int64
    public var expiresAt: Int64
    public var createdBy: String
    public var usedAt: Int64?

    public init(tokenHash: String, host: String, createdAt: Int64, expiresAt: Int64, createdBy: String) {
        self.tokenHash = tokenHash
        self.host = host
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.createdBy = createdBy
    }
}

extension ApprovalEngine {
    /// How long an enrollment token lasts unless the admin says otherwise, and at most.
    public static let enrollmentLifetime: Int64 = 3600
    public static let maxEnrollmentLifetime: Int64 = 7 * 86400

    /// A one-time token that enrolls `host` once, within `lifetime` seconds. The token is
    /// returned once and stored only as its SHA-256; the audit records who made it for which
    /// host, never the token.
    public func createEnrollment(
        host: String,
        lifetime: Int64 = enrollmentLifetime,
        by who: Principal
    ) async throws(EngineError) -> (token: String, expiresAt: Int64) {
        guard HostName.isValid(host) else {
            throw .refused(
                "\(LogText.escape(host, limit: 64)) is not a host name: lower-case letters, digits, '-' and '.', at most 253 characters"
            )
        }
        guard lifetime > 0, lifetime <= Self.maxEnrollmentLifetime else {
            throw .refused("an enrollment token lasts from 1 second to 7 days")
        }
        let now = clock()
        let token = EnrollmentToken.make()
        let enrollment = Enrollment(
            tokenHash: EnrollmentToken.hash(token),
            host: host,
            createdAt: now,
            expiresAt: now + lifetime,
            createdBy: who.description
        )
        try await store.transaction { (tx) throws(EngineError) in
            if let known = try await tx.host(host, forUpdate: true), !known.enabled {
                throw .refused("host \(host) is disabled: enable it before it enrolls again")
            }
            try await tx.insertEnrollment(enrollment)
            var e = AuditEvent(time: now, event: "host.enroll_token", actor: who.user, fields: [])
            e.fields = [
                .init("host", host), .init("expires_at", String(now + lifetime)),
                .init("token_id", EnrollmentToken.id(ofHash: enrollment.tokenHash)),
            ]
            if let via = who.via { e.fields.append(.init("via", via)) }
            try await tx.appendAudit([e])
        }
        return (token, now + lifetime)
    }

    /// Spends a token: the host it names is enrolled (created, or re-enrolled with a new key)
    /// with the key whose SHA-256 is `keyFingerprint`. A token works once, however many hosts
    /// race for it; an unknown, used or expired token and a disabled host are refused, and
    /// nothing is spent then.
    public func enroll(token: String, keyFingerprint: String) async throws(EngineError) -> EngineHost {
        let refusal = EngineError.refused(
            "the enrollment token is unknown, used or expired: ask an admin for a new one (writ-server host enroll HOST)"
        )
        guard EnrollmentToken.isWellFormed(token) else { throw refusal }
        let now = clock()
        let hash = EnrollmentToken.hash(token)
        return try await store.transaction { (tx) throws(EngineError) -> EngineHost in
            guard let enrollment = try await tx.consumeEnrollment(tokenHash: hash, now: now) else { throw refusal }
            var host = try await tx.host(enrollment.host, forUpdate: true) ?? EngineHost(name: enrollment.host)
            guard host.enabled else { throw .refused("host \(host.name) is disabled: an admin must enable it first") }
            host.enrolledAt = now
            host.keyFingerprint = keyFingerprint
            try await tx.upsertHost(host)
            let e = AuditEvent(
                time: now,
                event: "host.enroll",
                actor: host.name,
                fields: [
                    .init("host", host.name), .init("token_by", enrollment.createdBy),
                    .init("token_id", EnrollmentToken.id(ofHash: enrollment.tokenHash)),
                    .init("key", keyFingerprint),
                ]
            )
            try await tx.appendAudit([e])
            return host
        }
    }

    /// Disables or enables a host. A disabled host's agent routes are refused at once
    /// (`hostMayConnect`), and it cannot enroll again until enabled.
    public func setHost(_ name: String, enabled: Bool, by who: Principal) async throws(EngineError) -> EngineHost {
        let now = clock()
        return try await store.transaction { (tx) throws(EngineError) -> EngineHost in
            guard var host = try await tx.host(name, forUpdate: true) else {
                throw .notFound("no host \(LogText.escape(name, limit: 64)) has enrolled")
            }
            guard host.enabled != enabled else { return host }
            host.enabled = enabled
            host.disabledAt = enabled ? nil : now
            host.disabledBy = enabled ? nil : who.description
            try await tx.upsertHost(host)
            // Tokens made before it was disabled stay void: enabling it again needs a new one.
            if !enabled { try await tx.voidEnrollments(host: name, at: now) }
            var e = AuditEvent(time: now, event: enabled ? "host.enable" : "host.disable", actor: who.user, fields: [])
            e.fields = [.init("host", name)]
            if let via = who.via { e.fields.append(.init("via", via)) }
            try await tx.appendAudit([e])
            return host
        }
    }

    /// Whether an agent that presents a certificate for `name` with the key whose SHA-256 is
    /// `keyFingerprint` may be served now: the host has enrolled with that key (not an earlier
    /// one) and is not disabled.
    public func hostMayConnect(_ name: String, keyFingerprint: String) async throws(EngineError) -> Bool {
        try await store.transaction { (tx) throws(EngineError) -> Bool in
            guard let host = try await tx.host(name, forUpdate: false) else { return false }
            return host.enabled && host.keyFingerprint == keyFingerprint
        }
    }
}

/// Enrollment tokens: `wet_` and 64 hex digits (256 bits from the system CSPRNG).
enum EnrollmentToken {
    static let prefix = "wet_"

    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: rng.next() as UInt64) { bytes += $0 } }
        return prefix + Hex.lowercase(bytes)
    }

    static func isWellFormed(_ token: String) -> Bool {
        let utf8 = Array(token.utf8)
        return utf8.count == prefix.utf8.count + 64 && token.hasPrefix(prefix)
            && utf8.dropFirst(prefix.utf8.count).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    static func hash(_ token: String) -> String {
        Hex.lowercase(SHA256.hash(data: Array(token.utf8)))
    }

    /// What the audit records to tie a token's making to its use: the first 8 hex digits of its
    /// hash (nothing an attacker can spend).
    static func id(ofHash hash: String) -> String { String(hash.prefix(8)) }
}

/// Host names as DNS has them, in lower case (one spelling per host): labels of letters, digits
/// and '-', joined by dots, 253 at most.
public enum HostName {
    public static func isValid(_ name: String) -> Bool {
        let utf8 = Array(name.utf8)
        guard !utf8.isEmpty, utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let bytes = Array(label.utf8)
            return !bytes.isEmpty && bytes.count <= 63 && bytes.first != 0x2D && bytes.last != 0x2D
                && bytes.allSatisfy { b in
                    (0x30...0x39).contains(b) || (0x61...0x7A).contains(b) || b == 0x2D
                }
        }
    }
}
