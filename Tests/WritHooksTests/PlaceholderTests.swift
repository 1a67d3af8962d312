import Testing
@testable import WritHooks
