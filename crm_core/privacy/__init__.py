"""A person's data as one whole: finding everything held about them, exporting it (a subject
access request) and erasing it (docs/operations/personal-data.md)."""
