"""The test suite, one folder a layer: ``sql``, ``operators``, ``dag``, ``end_to_end``, ``services``;
their helpers in ``tests.support`` (docs/development.md lists what each file proves)."""
