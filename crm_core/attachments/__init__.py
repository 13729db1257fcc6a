"""The files e-mail brought in: recorded against their Activity, kept once in the blob store."""
