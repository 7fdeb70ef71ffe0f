"""The standing reliability suite (issue 14): schema fuzzing, faults, load. Fixtures shared by its files go here."""
