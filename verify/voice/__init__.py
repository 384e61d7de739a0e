"""Voice front end (resampling, silence trimming) and the GE2E speaker encoder."""
