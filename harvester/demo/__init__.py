"""A local OAI-PMH repository for ernte's demo, tests and benchmarks.

`sample` holds the record type and the bundled German SAMPLE DATA (written for the demo, not
real ORLIS records except the seed record), `generate` makes synthetic records deterministically,
`provider` serves records over OAI-PMH on loopback.
"""
