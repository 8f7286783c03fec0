"""Keyed replacements: UIDs, patient pseudonyms and date offsets derived from a secret (HMAC-SHA-256).

Why keyed hashes rather than a lookup table: the same original UID always maps to the same new UID,
within a study, across the studies of one export and across exports made with the same secret, with
nothing to store; and without the secret the mapping can neither be reversed nor recomputed from a
guessed original (a plain hash of a UID could be).

Each kind of value is hashed under its own label, so a UID and a patient ID that happen to be equal
give unrelated outputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MIN_SECRET_CHARACTERS = 32
# Dates move back by 1 to 3650 days; one offset per patient keeps intervals between studies.
MAX_DATE_SHIFT_DAYS = 3650
UUID_ROOT = "2.25."  # PS3.5 B.2: a UID from a UUID, as a decimal integer


class Pseudonyms:
    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARACTERS:
            raise ValueError(
                f"the de-identification secret must be at least {MIN_SECRET_CHARACTERS} characters"
            )
        self._key = secret.encode()

    def _digest(self, label: str, value: str) -> bytes:
        return hmac.new(self._key, f"{label}\0{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The replacement of `original`: 2.25. and a version-8 (custom) UUID made of the keyed hash."""
        raw = bytearray(self._digest("uid", original.strip("\0 "))[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (RFC 9562)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return UUID_ROOT + str(int.from_bytes(raw, "big"))

    def patient_id(self, original: str) -> str:
        """A pseudonym for a Patient ID (16 characters, fits LO): the same patient, the same pseudonym."""
        code = base64.b32encode(self._digest("patient-id", original.strip())[:10]).decode()
        return code[:16]

    def date_shift_days(self, patient_id: str) -> int:
        """How many days this patient's dates move (negative: back in time), the same for every study."""
        number = int.from_bytes(self._digest("date-shift", patient_id.strip())[:8], "big")
        return -(1 + number % MAX_DATE_SHIFT_DAYS)
