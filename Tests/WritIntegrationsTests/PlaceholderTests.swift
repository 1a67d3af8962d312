import Testing
@testable import WritIntegrations
