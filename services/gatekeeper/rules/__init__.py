"""The gatekeeper's rules: pure functions over (release, policy, gatekeeper state, now).

Each returns RuleOutcomes naming the rule, its effect and its reason; rules.evaluate combines them
into one Decision. Nothing here reads a clock, a file, a database or the bus.
"""
