"""The studio's broadcast: program pipeline, media sources, egress to destinations, recording.

Everything here is a citizen of the path hub (:mod:`trax.ingest.hub`): the
program pipeline reads source paths and publishes ``studios/<id>/program``;
egress, the recorder and monitors are ordinary readers of that path.
"""
