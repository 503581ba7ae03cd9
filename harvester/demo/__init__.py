"""A local OAI-PMH repository for ernte's demo, tests and benchmarks.

`sample` holds the record type and the bundled German SAMPLE DATA (written for the demo, not
real ORLIS records except the seed record), `generate` makes synthetic records deterministically,
`provider` serves records over OAI-PMH on loopback. The provider needs pyoai, which the
`demo` extra installs (`pip install 'ernte[demo]'`); harvesting real repositories does not.
"""

DEMO_EXTRA_HINT = "the demo's OAI-PMH provider needs pyoai: pip install 'ernte[demo]'"


class DemoExtraMissing(RuntimeError):
    """pyoai, the demo provider's one extra dependency, is not installed."""
