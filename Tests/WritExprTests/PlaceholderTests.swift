import Testing
@testable import WritExpr
