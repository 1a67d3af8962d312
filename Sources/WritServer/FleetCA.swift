import Crypto
import FoundationEssentials
import Glibc
import SwiftASN1
import WritFleetAPI
import X509

/// The server's own certificate authority: it signs every agent's client certificate and each
/// replica's TLS certificate. Made at first start in the state directory (root-only), or given by
/// an admin; every replica of one fleet must hold the same one (copy the directory).
public struct FleetCA: Sendable {
    public let certificate: Certificate
    let key: Certificate.PrivateKey

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case files(String)
        case signing(String)
        public var description: String {
            switch self {
            case .files(let m), .signing(let m): m
            }
        }
    }

    /// The CA in `directory` (`ca.pem`, `ca.key`), made there when neither file exists. Refuses
    /// a key readable by others, and a directory with only one of the two.
    public static func loadOrCreate(directory: String, name: String = "Writ fleet CA") throws(Failure) -> FleetCA {
        let certPath = directory + "/ca.pem"
        let keyPath = directory + "/ca.key"
        let haveCert = access(certPath, F_OK) == 0
        let haveKey = access(keyPath, F_OK) == 0
        if haveCert != haveKey {
            throw .files(
                "\(directory) holds only one of ca.pem and ca.key: restore the other, or remove both to make a new CA"
            )
        }
        if haveCert {
            let keyText: String
            let certText: String
            do {
                keyText = try FleetFiles.read(keyPath, requirePrivate: true)
                certText = try FleetFiles.read(certPath, requirePrivate: false)
            } catch {
                throw .files(error.description)
            }
            do {
                return FleetCA(
                    certificate: try Certificate(pemEncoded: certText),
                    key: try Certificate.PrivateKey(pemEncoded: keyText)
                )
            } catch {
                throw .files("\(certPath) or \(keyPath) is not a PEM certificate and key: \(error)")
            }
        }
        let ca = try make(name: name)
        do {
            try FleetFiles.makeDirectory(directory)
            try FleetFiles.write(keyPath, (try? ca.key.serializeAsPEM().pemString) ?? "", mode: 0o600)
            try FleetFiles.write(certPath, FleetPKI.pem(ca.certificate), mode: 0o644)
        } catch {
            throw .files(error.description)
        }
        return ca
    }

    /// A new CA, valid for ten years.
    public static func make(name: String = "Writ fleet CA", now: Date = Date()) throws(Failure) -> FleetCA {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        do {
            let subject = try DistinguishedName { CommonName(name) }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                },
                issuerPrivateKey: key
            )
            return FleetCA(certificate: certificate, key: key)
        } catch {
            throw .signing("cannot make a CA certificate: \(error)")
        }
    }

    /// A client certificate for `host` over `publicKey`, valid `lifetime` seconds: the agent's
    /// credential for every agent route. The host is the caller's to name (from the token or the
    /// certificate it renews), never the request's.
    public func issueClient(
        host: String,
        publicKey: Certificate.PublicKey,
        lifetime: Int64,
        now: Date = Date()
    ) throws(Failure) -> Certificate {
        try issue(
            subject: host,
            publicKey: publicKey,
            lifetime: lifetime,
            now: now,
            purpose: .clientAuth,
            names: SubjectAlternativeNames([.dnsName(host)])
        )
    }

    /// A TLS server certificate for `names` (DNS names and IP addresses), with a new key.
    public func issueServer(
        names: [String],
        lifetime: Int64,
        now: Date = Date()
    ) throws(Failure) -> (
        certificate: Certificate, keyPEM: String
    ) {
        let key = P256.Signing.PrivateKey()
        let wrapped = Certificate.PrivateKey(key)
        let alternatives = names.map { name -> GeneralName in
            if let ip = Self.addressBytes(name) { return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip))) }
            return .dnsName(name)
        }
        let certificate = try issue(
            subject: names.first ?? "writ-server",
            publicKey: wrapped.publicKey,
            lifetime: lifetime,
            now: now,
            purpose: .serverAuth,
            names: SubjectAlternativeNames(alternatives)
        )
        return (certificate, key.pemRepresentation)
    }

    private func issue(
        subject: String,
        publicKey: Certificate.PublicKey,
        lifetime: Int64,
        now: Date,
        purpose: ExtendedKeyUsage.Usage,
        names: SubjectAlternativeNames
    ) throws(Failure) -> Certificate {
        do {
            let authority = try certificate.extensions.subjectKeyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([purpose])
                names
                SubjectKeyIdentifier(hash: publicKey)
                if let authority { AuthorityKeyIdentifier(keyIdentifier: authority.keyIdentifier) }
            }
            return try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                // A little before now: an agent whose clock is slightly behind still accepts it.
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(TimeInterval(lifetime)),
                issuer: certificate.subject,
                subject: try DistinguishedName { CommonName(subject) },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: key
            )
        } catch {
            throw .signing("cannot sign a certificate for \(subject): \(error)")
        }
    }

    /// The bytes of an IPv4 or IPv6 address literal, nil for a DNS name.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }
}
