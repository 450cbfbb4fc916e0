"""Harnesses for testing shiftd as a whole: the crash loop and the invariants it checks."""
