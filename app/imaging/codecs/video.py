"""The video family (MPEG-2, H.264, HEVC; PS3.5 8.2.5-8.2.8): one stream holds every frame.

Nothing here decodes or encodes: a video stream has no separate frames to decode one at a time, and
Fovea serves it as stored. The entry exists so that every syntax has a family.
"""

from __future__ import annotations

from app.imaging.codecs.family import CodecFamily

FAMILY: CodecFamily = CodecFamily(name="video")
