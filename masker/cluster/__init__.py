"""One desktop view across masker nodes: a call directory and event fan-out in PostgreSQL.

Each node writes its calls' public state to `cluster_calls` and publishes each feed
event with NOTIFY (`publisher.py`, its own thread: SIP and media never wait for the
database); every node LISTENs (`fanout.py`, on the API's event loop) and hands the
events to its own feed subscribers; actions on another node's call are forwarded to
that node's API (`forward.py`); a survivor marks a silent node's calls `lost`
(`reaper.py`).  Only what the feed already shows a desktop crosses between nodes:
never card data.  docs/SCALING.md, "One view for the desktops", says why.
"""

from masker.cluster.node import ClusterNode

__all__ = ["ClusterNode"]
