import FoundationEssentials
import WritFleetAPI
import X509

/// What an enrolled agent holds, in its directory (root-only): its key (never sent), the client
/// certificate the server signed for it, the fleet CA it trusts, and the server's URL.
public struct AgentCredentials: Sendable, Equatable {
    public var server: String
    public var host: String
    public var keyPEM: String
    public var certificatePEM: String
    public var caPEM: String

    public init(server: String, host: String, keyPEM: String, certificatePEM: String, caPEM: String) {
        self.server = server
        self.host = host
        self.keyPEM = keyPEM
        self.certificatePEM = certificatePEM
        self.caPEM = caPEM
    }

    /// When the certificate ends (Unix seconds), nil when it does not parse.
    public var notAfter: Int64? {
        (try? Certificate(pemEncoded: certificatePEM)).map { Int64($0.notValidAfter.timeIntervalSince1970) }
    }

    /// When to renew: half way through the certificate's life.
    public var renewAt: Int64? {
        guard let c = try? Certificate(pemEncoded: certificatePEM) else { return nil }
        let start = Int64(c.notValidBefore.timeIntervalSince1970)
        let end = Int64(c.notValidAfter.timeIntervalSince1970)
        return start + (end - start) / 2
    }

    static let files = (server: "server", host: "host", key: "key.pem", certificate: "cert.pem", ca: "ca.pem")

    /// Reads the credentials in `directory`; nil when the agent never enrolled there.
    public static func load(directory: String) throws(FleetFiles.Failure) -> AgentCredentials? {
        guard FleetFiles.exists(directory + "/" + files.key) else { return nil }
        let server = try FleetFiles.read(directory + "/" + files.server, requirePrivate: false)
        return AgentCredentials(
            server: server.trimmingTrailingNewlines(),
            host: try FleetFiles.read(directory + "/" + files.host, requirePrivate: false).trimmingTrailingNewlines(),
            keyPEM: try FleetFiles.read(directory + "/" + files.key, requirePrivate: true),
            certificatePEM: try FleetFiles.read(directory + "/" + files.certificate, requirePrivate: false),
            caPEM: try FleetFiles.read(directory + "/" + files.ca, requirePrivate: false)
        )
    }

    /// Writes them whole: the key 0600, the rest 0644, the directory 0700. The certificate is
    /// written last, so a crash leaves either the old pair or the new one usable (a renewal
    /// keeps the key; enrolling again writes a new key first, then its certificate).
    public func save(directory: String) throws(FleetFiles.Failure) {
        try FleetFiles.makeDirectory(directory)
        try FleetFiles.write(directory + "/" + Self.files.server, server + "\n", mode: 0o644)
        try FleetFiles.write(directory + "/" + Self.files.host, host + "\n", mode: 0o644)
        try FleetFiles.write(directory + "/" + Self.files.ca, caPEM, mode: 0o644)
        try FleetFiles.write(directory + "/" + Self.files.key, keyPEM, mode: 0o600)
        try FleetFiles.write(directory + "/" + Self.files.certificate, certificatePEM, mode: 0o644)
    }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
