"""The anchored RTP media plane: per-call sockets, latching, live masking, pacing.

masker.media.engine.MediaEngine is its public face; its docstring maps the parts.
masker.media.workers.MediaWorkers runs MediaEngines in worker processes behind the
same commands (masker.media.plane.MediaPlane, `[media] workers`).
"""
