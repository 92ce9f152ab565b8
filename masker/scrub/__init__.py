"""`masker scrub`: remove keyed card digits from whole recording archives.

One module per job: `plan` (walk the sources), `engine` (the live masker over
whole channels, many segments per batch), `audio` (WAV/FLAC/Ogg), `pcap`
(pcap/pcapng RTP, RFC 4733 and SIP INFO), `verify` (independent receiver),
`atomic` (temp + fsync + replace), `manifest` (resume), `report`, `progress`
and `runner` (the per-file job and the process pool).
"""

#: Bumped whenever the output of a job could change: part of the manifest key.
SCRUB_VERSION = 1
