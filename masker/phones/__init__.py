"""Real SIP phones (pjsua2) for tests, the demo, `masker probe` and the call bench.

A phone runs in its own process (`python -m masker.phones.phone`) because the
pjsua2 wheel is built for at most four calls per process; `client.PhoneClient`
starts one and drives it with JSON lines over stdin/stdout.
"""
