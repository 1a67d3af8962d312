import Crypto
import FoundationEssentials
import SwiftASN1
import WritCore
import X509

/// The certificates of a fleet, as both sides need them: an agent makes its key and a
/// certificate request; the server reads the request, and both name a host's key by the SHA-256
/// of its SubjectPublicKeyInfo (the `key` of a host in the server's store).
public enum FleetPKI {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self {
            case .malformed(let m): m
            }
        }
    }

    /// A new P-256 key, PEM (PKCS#8): what an agent keeps root-only and never sends.
    public static func makeKey() -> String { P256.Signing.PrivateKey().pemRepresentation }

    /// A certificate request for `host`, signed with `keyPEM`. The server names the host from
    /// the token or the certificate it already holds, never from the request.
    public static func makeRequest(keyPEM: String, host: String) throws(Failure) -> String {
        do {
            let key = try Certificate.PrivateKey(pemEncoded: keyPEM)
            let request = try CertificateSigningRequest(
                version: .v1,
                subject: try DistinguishedName { CommonName(host) },
                privateKey: key,
                attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256
            )
            return try request.serializeAsPEM().pemString
        } catch {
            throw .malformed("cannot make a certificate request: \(error)")
        }
    }

    /// Reads a certificate request and checks that it is signed by the key it carries.
    public static func readRequest(_ pem: String) throws(Failure) -> CertificateSigningRequest {
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(pemEncoded: pem)
        } catch {
            throw .malformed("the certificate request is not a PKCS#10 request in PEM")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw .malformed("the certificate request is not signed by its own key")
        }
        return request
    }

    /// The SHA-256 of a public key's SubjectPublicKeyInfo (DER), hex.
    public static func fingerprint(_ key: Certificate.PublicKey) -> String {
        var serializer = DER.Serializer()
        // A public key that was parsed or made always serialises.
        try? serializer.serialize(key)
        return Hex.lowercase(SHA256.hash(data: serializer.serializedBytes))
    }

    /// The SHA-256 of a certificate (DER), hex: what `writd enroll --ca-sha256` pins.
    public static func fingerprint(_ certificate: Certificate) -> String {
        Hex.lowercase(SHA256.hash(data: der(certificate)))
    }

    /// The first common name of a certificate's subject.
    public static func commonName(_ certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value)
            }
        }
        return nil
    }

    public static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    public static func pem(_ certificate: Certificate) -> String {
        (try? certificate.serializeAsPEM().pemString) ?? ""
    }
}
