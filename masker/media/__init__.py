"""The anchored RTP media plane: per-call sockets, latching, live masking, pacing.

masker.media.engine.MediaEngine is its public face; its docstring maps the parts.
"""
