"""What ingest and upkeep do in the cases an operator decides: duplicates, patient mismatches, rejected
instances stored again, and how long blobs wait before they are deleted.

The store owns these values; `app/settings.py` reads them from the environment (FOVEA_DUPLICATE_POLICY,
FOVEA_PATIENT_MISMATCH, FOVEA_REJECTED_RESTORE, FOVEA_BLOB_DELETION_GRACE_S, FOVEA_ORPHAN_GRACE_S).
"""

from __future__ import annotations

from enum import StrEnum

DEFAULT_BLOB_DELETION_GRACE_S = 300.0  # a replaced or deleted blob outlives the reads that may still want it
# An unreferenced blob or spool file is left alone this long: whatever wrote it may still be working.
DEFAULT_ORPHAN_GRACE_S = 3600.0


class DuplicatePolicy(StrEnum):
    """What STOW-RS does with a SOP Instance UID that is already stored."""

    REPLACE = "replace"  # the new instance replaces the stored one (atomically)
    REJECT = "reject"  # the new instance fails with Failure Reason 0x0111 (duplicate)
    KEEP = "keep"  # the stored instance is kept; the new one is discarded with a warning


class PatientMismatchPolicy(StrEnum):
    """What ingest does with an instance whose patient identity contradicts the index's (ID, name)."""

    REJECT = "reject"  # the instance fails with Failure Reason 0xC410; the index is unchanged
    ACCEPT_NEW = "accept-new"  # stored, filed under the patient the index has; warning 0xB110
    UPDATE = "update"  # stored; the study is filed under the instance's patient; warning 0xB111


class RejectedRestorePolicy(StrEnum):
    """What ingest does with an instance an IHE IOCM rejection note rejected (FOVEA_REJECTED_RESTORE)."""

    REFUSE = "refuse"  # the instance fails with Failure Reason 0xA771; the rejection stands
    ACCEPT = "accept"  # stored as any other instance would be; the rejection is lifted
