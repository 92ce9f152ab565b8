"""One module per `masker` sub-command; each exposes add_parser() and run()."""
