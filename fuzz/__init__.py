"""Coverage-guided fuzzing (atheris/libFuzzer) of every parser that reads outside input.

`targets` holds one entry point per parser, each taking raw bytes and letting
through only the errors that parser documents as its way of refusing input:
anything else is a crash.  `python -m fuzz` runs targets for a time budget each
(`make fuzz`); committed seed corpora live in fuzz/corpus/<target>/, and every
crash found becomes a regression input in fuzz/regressions/<target>/, replayed
by the test suite.
"""
