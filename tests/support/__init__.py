"""Real components for the tests: certificates, a token server and a fault-injecting proxy."""
