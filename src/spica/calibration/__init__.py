"""Step 2 calibration around SCAMP: ``.ahead`` files, accept summary, delivered heads."""
