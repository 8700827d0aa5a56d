"""Deploy tests (a package so its conftest and helpers have their own module names)."""
