"""The data lifecycle beyond storing and serving: de-identified copies and exports.

confidentiality_profile.py  PS3.15 Annex E: the Basic Profile's actions by tag, options, method codes
pseudonyms.py               keyed (HMAC) replacement UIDs, patient pseudonyms and date shifts
deidentify.py               Deidentifier: applies the profile and its options to a pydicom data set
export_images.py            a stored image as PNG (windowed) or TIFF (stored values), oriented for display
export_pdf.py               a study's key slices as one PDF/A-2b report
export_progress.py          the export's progress bar
export.py                   `fovea export`: studies from the index and blob store to files, audited
"""
