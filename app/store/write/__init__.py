"""The write path: a Part 10 file parsed once, checked, written as a blob and indexed (STOW-RS, import)."""
