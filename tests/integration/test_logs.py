import io
import json
import logging

import pytest
import structlog

from masker.runtime.logs import configure_logging
from tests.support.cards import VISA


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    yield stream
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_masker_handler", False):
            root.removeHandler(h)
    structlog.reset_defaults()


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_lines_are_json(log_stream):
    structlog.get_logger("t").info("hello", calls=3)
    assert lines(log_stream)[-1]["event"] == "hello" and lines(log_stream)[-1]["calls"] == 3


def test_structlog_card_numbers_are_redacted(log_stream):
    structlog.get_logger("t").info("paid", note=f"card {VISA}", pan=VISA)
    assert VISA not in log_stream.getvalue()


def test_stdlib_logging_goes_through_the_redactor(log_stream):
    logging.getLogger("aiohttp.client").warning("body %s", VISA)
    out = lines(log_stream)[-1]
    assert VISA not in log_stream.getvalue() and out["logger"] == "aiohttp.client"


def test_exception_text_is_redacted(log_stream):
    try:
        raise ValueError(f"bad {VISA}")
    except ValueError:
        structlog.get_logger("t").exception("failed")
    assert VISA not in log_stream.getvalue() and "ValueError" in log_stream.getvalue()


def test_stdlib_exception_text_is_redacted(log_stream):
    try:
        raise ValueError(f"bad {VISA}")
    except ValueError:
        logging.getLogger("x").exception("failed")
    assert VISA not in log_stream.getvalue() and "ValueError" in log_stream.getvalue()


def test_level_filters_lower_levels():
    stream = io.StringIO()
    configure_logging(level="warning", stream=stream)
    try:
        structlog.get_logger("t").info("quiet")
        assert stream.getvalue() == ""
    finally:
        configure_logging(level="info", stream=io.StringIO())
        structlog.reset_defaults()


def test_configuring_twice_keeps_one_handler(log_stream):
    configure_logging(stream=log_stream)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_masker_handler", False)]
    assert len(ours) == 1


def test_unknown_level_is_refused():
    with pytest.raises(ValueError):
        configure_logging(level="loud")


def test_console_mode_renders_plain_text():
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    try:
        structlog.get_logger("t").info("plain", pan=VISA)
        assert "plain" in stream.getvalue() and VISA not in stream.getvalue()
    finally:
        structlog.reset_defaults()
