"""The analyzer's pure domain: calibration maths, sources, astrometry, photometry, candidates."""
