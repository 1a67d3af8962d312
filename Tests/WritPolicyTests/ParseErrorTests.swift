import Testing
import WritPolicy

/// Every mistake is reported at the line and column an editor should jump to, with the exact
/// message: people fix policies from these lines alone.
@Suite("Policy.parse errors")
struct ParseErrorTests {
    // MARK: YAML and the top level

    @Test("a YAML syntax error is reported where libyaml found it")
    func yamlSyntax() {
        let yaml = """
            version: 1
            flows:
              - name: ops: x
            """
        #expect(issues(yaml) == ["3:14: YAML syntax error: mapping values are not allowed in this context"])
    }

    @Test("a tab used for indentation gets a hint")
    func tabIndentation() {
        #expect(
            issues("version: 1\nflows:\n\t- name: x\n") == [
                "3:1: YAML syntax error: found character that cannot start any token (while scanning for the next token "
                    + "at line 3, column 1) — YAML does not allow tabs for indentation: use spaces"
            ]
        )
    }

    @Test("an unclosed list is reported where libyaml gave up, with where the list began")
    func unclosedList() {
        let yaml = """
            version: 1
            flows:
              - name: ops
                capability: [sudo
            """
        #expect(
            issues(yaml) == [
                "5:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 4, column 17)"
            ]
        )
    }

    @Test("a key written twice in one mapping")
    func duplicateKey() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                capability: login
            """
        #expect(
            issues(yaml) == [
                "4:5: key 'capability' appears more than once in the same mapping: YAML would keep only one — "
                    + "remove or rename the others"
            ]
        )
    }

    @Test("the top level must be a mapping")
    func topLevelNotMapping() {
        #expect(
            issues("- version: 1\n- flows: []\n") == [
                "1:1: the policy must be a mapping of version, groups, defaults and flows, not a list: start with 'version: 1'"
            ]
        )
        #expect(
            issues("just words\n") == [
                "1:1: the policy must be a mapping of version, groups, defaults and flows, not 'just words': "
                    + "start with 'version: 1'"
            ]
        )
    }

    @Test("an empty file")
    func emptyFile() {
        #expect(issues("") == ["1:1: the policy is empty: start with 'version: 1' and a 'flows:' list"])
        #expect(
            issues("# only a comment\n") == ["1:1: the policy is empty: start with 'version: 1' and a 'flows:' list"]
        )
    }

    @Test("version is required and must be 1")
    func version() {
        let missing = """
            flows:
            \(minimalFlow)
            """
        #expect(issues(missing) == ["1:1: 'version: 1' is missing at the top level: add it as the first line"])
        let two = """
            version: 2
            flows:
            \(minimalFlow)
            """
        #expect(issues(two) == ["1:10: 'version' must be 1, not '2': this Writ reads version 1 policies"])
        let list = """
            version: [1]
            flows:
            \(minimalFlow)
            """
        #expect(issues(list) == ["1:10: 'version' must be 1, not a list: this Writ reads version 1 policies"])
    }

    @Test("flows must be a non-empty list")
    func flowsShape() {
        #expect(
            issues("version: 1\nflows: []\n") == [
                "2:8: 'flows' is an empty list: with no flows nobody can request anything — add a flow"
            ]
        )
        #expect(
            issues("version: 1\nflows:\n") == [
                "2:1: 'flows' at the top level must be a list of flows (each item starting with '- name:'), but it is empty"
            ]
        )
        #expect(
            issues("version: 1\nflows: {name: ops}\n") == [
                "2:8: 'flows' at the top level must be a list of flows (each item starting with '- name:'), not a mapping"
            ]
        )
        #expect(
            issues("version: 1\n") == ["1:1: 'flows' is missing at the top level: a policy needs at least one flow"]
        )
        #expect(
            issues("version: 1\nflows:\n  - ops-sudo\n") == [
                "3:5: flow 1 in 'flows' must be a mapping starting with 'name:', not 'ops-sudo'"
            ]
        )
    }

    // MARK: Unknown keys

    @Test("unknown keys are reported at every level, with the known key they are a typo of")
    func unknownKeysEverywhere() {
        let yaml = """
            version: 1
            grups: {sre: [alice]}
            defaults:
              pending_timout: 1h
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {user: [alice]}
                aprovers: {users: [bob]}
                duration: {default: 30m, maximum: 2h}
                reason: {patern: "^INC"}
                colour: blue
                auto_approve:
                  - name: nights
                    requester_in: {users: [alice]}
                    max_duraton: 1h
                    window: {form: "22:00", to: "06:00"}
            """
        #expect(
            issues(yaml) == [
                "2:1: unknown key 'grups' at the top level — did you mean 'groups'?",
                "4:3: unknown key 'pending_timout' in defaults — did you mean 'pending_timeout'?",
                "8:18: unknown key 'user' in the requesters of flow ops-sudo — did you mean 'users'?",
                "9:5: unknown key 'aprovers' in flow ops-sudo — did you mean 'approvers'?",
                "10:30: unknown key 'maximum' in the duration of flow ops-sudo — expected one of: default, max",
                "11:14: unknown key 'patern' in the reason of flow ops-sudo — did you mean 'pattern'?",
                "12:5: unknown key 'colour' in flow ops-sudo — expected one of: name, description, capability, hosts, "
                    + "runas, commands, requesters, approvers, approvals, steps, self_approval, duration, reason, "
                    + "pending_timeout, warn_before, auto_deny, …",
                "16:9: unknown key 'max_duraton' in auto_approve rule nights of flow ops-sudo — did you mean 'max_duration'?",
                "17:18: unknown key 'form' in the window of auto_approve rule nights of flow ops-sudo — did you mean 'from'?",
            ]
        )
    }

    @Test("swapped letters count as one edit; case is ignored")
    func typoKinds() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                reuqesters: {users: [alice]}
                Approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "5:5: unknown key 'reuqesters' in flow ops-sudo — did you mean 'requesters'?",
                "6:5: unknown key 'Approvers' in flow ops-sudo — did you mean 'approvers'?",
            ]
        )
    }

    // MARK: Types

    @Test("a value of the wrong type says what it must be, and how to write one item as a list")
    func wrongTypes() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                hosts: web-01
                requesters: [alice]
                approvers: {users: bob}
                approvals: two
                self_approval: yes
                duration: 2h
            """
        #expect(
            issues(yaml) == [
                "5:12: 'hosts' in flow ops-sudo must be a list, e.g. [\"web-*\", db-01], not 'web-01': "
                    + "write [web-01] for a single item",
                "6:17: 'requesters' in flow ops-sudo must be a mapping, e.g. {users: [alice], unix_groups: [ops], "
                    + "groups: [sre]}, not a list",
                "7:24: 'users' in the approvers of flow ops-sudo must be a list, e.g. [alice, bob], not 'bob': "
                    + "write [bob] for a single item",
                "8:16: 'approvals' in flow ops-sudo must be a whole number, not 'two'",
                "9:20: 'self_approval' in flow ops-sudo must be true or false, not 'yes'",
                "10:15: 'duration' in flow ops-sudo must be a mapping, e.g. {default: 30m, max: 2h}, not '2h'",
            ]
        )
    }

    @Test("names with spaces and empty list items are refused")
    func badNames() {
        let yaml = """
            version: 1
            groups:
              sre: [alice, "bob smith"]
            flows:
              - name: ops-sudo
                capability: sudo
                hosts: ["web-*", "wéb-01"]
                requesters: {users: [alice, ~]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "3:16: item 2 of 'sre' in groups is 'bob smith': names must not contain spaces or control characters",
                "7:22: item 2 of 'hosts' in flow ops-sudo is 'wéb-01': host patterns must be ASCII",
                "8:33: item 2 of 'users' in the requesters of flow ops-sudo must be a name, but it is empty",
            ]
        )
    }

    // MARK: Required keys

    @Test("name, capability, requesters and approvers are required")
    func requiredKeys() {
        let yaml = """
            version: 1
            flows:
              - capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
              - name: no-capability
                requesters: {users: [alice]}
                approvers: {users: [bob]}
              - name: no-requesters
                capability: sudo
                approvers: {users: [bob]}
              - name: no-approvers
                capability: sudo
                requesters: {users: [alice]}
            """
        #expect(
            issues(yaml) == [
                "3:5: flow 1 has no 'name'",
                "6:5: 'capability' is missing in flow no-capability: add capability: sudo or capability: login",
                "9:5: 'requesters' is missing in flow no-requesters: say who may ask, e.g. requesters: {unix_groups: [ops]}",
                "12:5: 'approvers' is missing in flow no-approvers: say who may approve, e.g. approvers: {groups: [leads]} (or steps:)",
            ]
        )
    }

    @Test("requesters and approvers that name nobody")
    func emptyPrincipals() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {}
                approvers: {users: []}
            """
        #expect(
            issues(yaml) == [
                "5:17: 'requesters' in flow ops-sudo names nobody: list users, unix_groups or groups",
                "6:16: 'approvers' in flow ops-sudo names nobody: list users, unix_groups or groups (or add auto_approve rules)",
            ]
        )
    }

    @Test("a misspelt required key is reported once, as the typo")
    func misspeltRequiredKeyOnce() {
        let yaml = """
            version: 1
            flows:
              - nmae: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(issues(yaml) == ["3:5: unknown key 'nmae' in flow 1 — did you mean 'name'?"])
    }

    // MARK: Values

    @Test("flow names are unique")
    func duplicateFlowNames() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
              - name: ops-sudo
                capability: login
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "7:11: flow name 'ops-sudo' is already used by the flow at line 3: flow names must be unique"
            ]
        )
    }

    @Test("flow names are words people can type")
    func flowNameCharacters() {
        let yaml = """
            version: 1
            flows:
              - name: ops sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "3:11: flow name 'ops sudo' may use only letters, digits, '.', '_' and '-' (people type it after --flow)"
            ]
        )
    }

    @Test("capability is sudo or login")
    func badCapability() {
        let yaml = """
            version: 1
            flows:
              - name: a
                capability: suod
                requesters: {users: [alice]}
                approvers: {users: [bob]}
              - name: b
                capability: root
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "4:17: unknown capability 'suod' in flow a — did you mean 'sudo'?",
                "8:17: unknown capability 'root' in flow b — expected one of: login, sudo",
            ]
        )
    }

    @Test("durations must parse, be more than 0 and at most 31 days")
    func badDurations() {
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
                duration: {default: 30 minutes, max: 40d}
                pending_timeout: 0s
                warn_before: soon
            """
        #expect(
            issues(yaml) == [
                "7:25: 'default' in the duration of flow ops-sudo: \"30 minutes\" is not a duration: use a number and "
                    + "a unit, e.g. 90s, 30m, 4h, 1h30m, 2d",
                "7:42: 'max' in the duration of flow ops-sudo is 40d, over the longest grant Writ gives (31d)",
                "8:22: 'pending_timeout' in flow ops-sudo must be more than 0s",
                "9:18: 'warn_before' in flow ops-sudo: \"soon\" is not a duration: use a number and a unit, e.g. 90s, "
                    + "30m, 4h, 1h30m, 2d",
            ]
        )
    }

    @Test("the default duration may not exceed the max")
    func defaultOverMax() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                duration: {default: 4h, max: 2h}
            """
        #expect(
            issues(yaml) == [
                "7:25: the default duration 4h in flow ops-sudo is over its max 2h: lower the default or raise the max"
            ]
        )
    }

    @Test("a default from defaults over a flow's own max is reported at the flow's max")
    func defaultFromDefaultsOverFlowMax() {
        let yaml = """
            version: 1
            defaults:
              duration: {default: 4h}
            flows:
            \(minimalFlow)
                duration: {max: 2h}
            """
        #expect(
            issues(yaml) == [
                "9:21: the default duration 4h in flow ops-sudo is over its max 2h: lower the default or raise the max"
            ]
        )
    }

    @Test("a mistake in defaults is reported once, not once per flow")
    func defaultsReportedOnce() {
        let yaml = """
            version: 1
            defaults:
              duration: {default: 4h, max: 2h}
            flows:
            \(minimalFlow)
              - name: other
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "3:23: the default duration 4h in defaults is over its max 2h: lower the default or raise the max"
            ]
        )
    }

    @Test("an auto-approve rule cannot grant longer than its flow")
    func ruleOverFlowMax() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                duration: {default: 30m, max: 2h}
                auto_approve:
                  - name: nights
                    requester_in: {users: [alice]}
                    max_duration: 4h
            """
        #expect(
            issues(yaml) == [
                "11:23: 'max_duration' in auto_approve rule nights of flow ops-sudo is 4h, over the flow's max 2h: "
                    + "a rule cannot grant longer than its flow"
            ]
        )
    }

    @Test("approvals must be at least 1")
    func approvalsZero() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                approvals: 0
            """
        #expect(issues(yaml) == ["7:16: 'approvals' in flow ops-sudo must be at least 1, not 0"])
    }

    @Test("approvals cannot exceed the listed approvers when only users and policy groups are listed")
    func approvalsOverApprovers() {
        let yaml = """
            version: 1
            groups:
              leads: [carol]
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob], groups: [leads]}
                approvals: 3
            """
        #expect(
            issues(yaml) == [
                "9:16: approvals: 3 in flow ops-sudo can never be met: only 2 approvers are listed (bob, carol) — "
                    + "lower approvals or add approvers"
            ]
        )
        // Unix groups have members only the host knows: no complaint.
        let withUnixGroup = yaml.replacingFirst("groups: [leads]}", with: "groups: [leads], unix_groups: [ops]}")
        #expect(issues(withUnixGroup) == [])
    }

    @Test("a requester who is an approver cannot be one of their own approvals without self_approval")
    func approvalsStuckForRequester() {
        let yaml = """
            version: 1
            groups:
              sre: [alice, bob]
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {groups: [sre]}
                approvers: {groups: [sre]}
                approvals: 2
            """
        #expect(
            issues(yaml) == [
                "9:16: approvals: 2 in flow ops-sudo can never be met for requests by alice, bob: only 1 approval is "
                    + "possible for them (the other approvers listed; self_approval is false)"
            ]
        )
    }

    @Test("self_approval with one approval would let a requester approve alone")
    func selfApprovalAlone() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                self_approval: true
            """
        #expect(
            issues(yaml) == [
                "7:20: self_approval: true with approvals: 1 in flow ops-sudo lets every requester approve their own "
                    + "request alone — set approvals: 2 or more, or self_approval: false"
            ]
        )
        let twoApprovals = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [alice, bob]}
                self_approval: true
                approvals: 2
            """
        #expect(issues(twoApprovals) == [])
        // A flow approved only by rules has no approvers, and still no approving oneself alone.
        let rulesOnly = """
            version: 1
            flows:
              - name: oncall
                capability: sudo
                requesters: {unix_groups: [oncall]}
                self_approval: true
                auto_approve:
                  - name: always
                    requester_in: {unix_groups: [oncall]}
            """
        #expect(
            issues(rulesOnly) == [
                "6:20: self_approval: true with approvals: 1 in flow oncall lets every requester approve their own "
                    + "request alone — set approvals: 2 or more, or self_approval: false"
            ]
        )
    }

    @Test("policy groups must be defined; a near name is suggested")
    func undefinedPolicyGroup() {
        let yaml = """
            version: 1
            groups:
              sre: [alice]
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {groups: [sre2]}
                approvers: {groups: [dbas]}
            """
        #expect(
            issues(yaml) == [
                "7:27: policy group 'sre2' in the requesters of flow ops-sudo is not defined under 'groups' — "
                    + "did you mean 'sre'?",
                "8:26: policy group 'dbas' in the approvers of flow ops-sudo is not defined under 'groups': define it "
                    + "there, or use unix_groups for a Unix group",
            ]
        )
    }

    @Test("reason.pattern must compile")
    func badRegex() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                reason: {pattern: "^INC-[0-9+"}
            """
        #expect(
            issues(yaml) == [
                "7:23: 'pattern' in the reason of flow ops-sudo is not a valid regular expression: this class is not "
                    + "closed: add a ']' (or write \\[ for a literal bracket) (at character 6 of the pattern)"
            ]
        )
    }

    @Test("reason.example must match reason.pattern")
    func exampleMismatch() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                reason: {pattern: "^INC-[0-9]+", example: "ticket 12"}
            """
        #expect(
            issues(yaml) == [
                "7:47: the example reason in flow ops-sudo does not match the pattern ^INC-[0-9]+: fix one of them"
            ]
        )
    }

    @Test("days, times and time zones are checked, and only fixed offsets are accepted")
    func badWindow() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                auto_approve:
                  - name: nights
                    requester_in: {users: [alice]}
                    window:
                      days: [mon, fry, 3]
                      from: "25:00"
                      to: 6pm
                      tz: Europe/Berlin
            """
        let rule = "in the window of auto_approve rule nights of flow ops-sudo"
        #expect(
            issues(yaml) == [
                "11:23: item 2 of 'days' \(rule): 'fry' is not a day — did you mean 'fri'?",
                "11:28: item 3 of 'days' \(rule): '3' is not a day: use sun, mon, tue, wed, thu, fri, sat",
                "12:17: 'from' \(rule) is '25:00', not a time: use 24-hour HH:MM, e.g. \"08:00\" or \"17:30\"",
                "13:15: 'to' \(rule) is '6pm', not a time: use 24-hour HH:MM, e.g. \"08:00\" or \"17:30\" "
                    + "(\"24:00\" for midnight at the end)",
                "14:15: 'tz' \(rule) is 'Europe/Berlin': only UTC or a fixed offset such as +02:00 or -05:30 is "
                    + "supported (named zones and daylight saving time are not)",
            ]
        )
    }

    @Test("a window whose from and to are equal would be empty")
    func emptyWindow() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                auto_approve:
                  - name: nights
                    requester_in: {users: [alice]}
                    window: {from: "08:00", to: "08:00", tz: "+14:30"}
            """
        let rule = "in the window of auto_approve rule nights of flow ops-sudo"
        #expect(
            issues(yaml) == [
                "10:37: 'from' and 'to' \(rule) are the same time, so the window is empty: use from: \"00:00\" and "
                    + "to: \"24:00\" for the whole day",
                "10:50: 'tz' \(rule) is '+14:30': only UTC or a fixed offset such as +02:00 or -05:30 is supported "
                    + "(named zones and daylight saving time are not)",
            ]
        )
    }

    @Test("auto_approve rules need a name (unique in the flow) and something to test")
    func ruleRequiredKeys() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                auto_approve:
                  - requester_in: {users: [alice]}
                  - name: nights
                  - name: weekends
                    requester_in: {users: [alice]}
                  - name: weekends
                    requester_in: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "8:9: an auto_approve rule in flow ops-sudo has no 'name'",
                "9:9: auto_approve rule nights of flow ops-sudo needs requester_in, window or when — say whose "
                    + "requests it approves, e.g. requester_in: {groups: [sre]} (write when: 'true' to approve every request)",
                "12:15: auto_approve rule name 'weekends' is already used in flow ops-sudo at line 10: rule names must "
                    + "be unique within a flow",
            ]
        )
    }

    @Test("command lines are checked like writ grant add --command, at the item")
    func badCommands() {
        let yaml = """
            version: 1
            flows:
            \(minimalFlow)
                commands:
                  - systemctl restart nginx
                  - "/usr/bin/echo 'unbalanced"
                  - ""
                  - [/usr/bin/true]
            """
        #expect(
            issues(yaml) == [
                "8:9: item 1 of 'commands' in flow ops-sudo: command path \"systemctl\" is not absolute: give the full "
                    + "path, e.g. /usr/bin/systemctl",
                "9:9: item 2 of 'commands' in flow ops-sudo: unbalanced quote or trailing backslash in command",
                "10:9: item 3 of 'commands' in flow ops-sudo is empty: give an absolute path and its arguments, e.g. "
                    + "\"/usr/bin/systemctl restart nginx\"",
                "11:9: item 4 of 'commands' in flow ops-sudo must be a command line, not a list",
            ]
        )
        let empty = minimalPolicy + "\n    commands: []"
        #expect(
            issues(empty) == [
                "7:15: 'commands' in flow ops-sudo is an empty list: give at least one item, e.g. "
                    + "[\"/usr/bin/systemctl restart nginx\"]"
            ]
        )
    }

    @Test("runas and commands are for sudo flows only")
    func loginFlowScope() {
        let yaml = """
            version: 1
            flows:
              - name: web-login
                capability: login
                runas: root
                commands: [/usr/bin/true]
                requesters: {users: [alice]}
                approvers: {users: [bob]}
            """
        #expect(
            issues(yaml) == [
                "5:5: 'runas' in flow web-login applies to sudo flows only: this flow grants login",
                "6:5: 'commands' in flow web-login applies to sudo flows only: this flow grants login",
            ]
        )
    }

    // MARK: Collecting

    @Test("all issues are reported, sorted by position even when found out of order")
    func sortedByPosition() {
        // The unknown top-level key is found before the flows are read, but comes after them.
        let yaml = """
            version: 1
            flows:
              - name: ops-sudo
                capability: sudo
                requesters: {groups: [nobody]}
                approvers: {users: [bob]}
                approvals: 0
            grups: {}
            """
        #expect(
            issues(yaml) == [
                "5:27: policy group 'nobody' in the requesters of flow ops-sudo is not defined under 'groups': define "
                    + "it there, or use unix_groups for a Unix group",
                "7:16: 'approvals' in flow ops-sudo must be at least 1, not 0",
                "8:1: unknown key 'grups' at the top level — did you mean 'groups'?",
            ]
        )
    }

    @Test("a broken flow does not hide mistakes in the flows after it")
    func laterFlowsStillChecked() {
        let yaml = """
            version: 1
            flows:
              - name: a
                capability: sudo
              - name: b
                capability: sudo
                requesters: {users: [alice]}
                approvers: {users: [bob]}
                duration: {default: 1x}
            """
        #expect(
            issues(yaml) == [
                "3:5: 'requesters' is missing in flow a: say who may ask, e.g. requesters: {unix_groups: [ops]}",
                "3:5: 'approvers' is missing in flow a: say who may approve, e.g. approvers: {groups: [leads]} (or steps:)",
                "9:25: 'default' in the duration of flow b: \"1x\" is not a duration: use a number and a unit, e.g. "
                    + "90s, 30m, 4h, 1h30m, 2d",
            ]
        )
    }
}

extension String {
    /// This string with the first `target` replaced (Foundation-free, for building variants).
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}

@Suite struct ReasonPatternTests {
    /// Patterns that make a backtracking engine take exponential time on a crafted reason: the
    /// linear-time engine takes them, and a 500-character hostile reason is answered at once.
    @Test(arguments: ["^(\\w+\\s?)*$", "(a|aa)+$", "((ab)*c)+", "(x+){2,}y", "^(a?){25}a{25}$"])
    func pathologicalPatternsAreHarmless(_ pattern: String) throws {
        let yaml = minimalPolicy + "\n    reason: {pattern: '\(pattern)'}"
        let policy = try Policy.parse(yaml, file: "p.yaml")
        let hostile = String(repeating: "a", count: 499) + "!"
        let result = policy.evaluate(
            RequestInput(user: "alice", capability: .sudo, host: "h", duration: 60, reason: hostile, now: 0)
        )
        #expect(throws: PolicyRefusal.reasonMismatch(flow: "ops-sudo", pattern: pattern, example: nil)) {
            try result.get()
        }
    }

    @Test("a long reason that matches a nested pattern is accepted")
    func nestedPatternMatches() throws {
        let policy = try Policy.parse(minimalPolicy + "\n    reason: {pattern: '^(a|aa)+$'}", file: "p.yaml")
        let reason = String(repeating: "a", count: 500)
        let e = policy.evaluate(
            RequestInput(user: "alice", capability: .sudo, host: "h", duration: 60, reason: reason, now: 0)
        )
        #expect(try e.get().flow.name == "ops-sudo")
    }
}
