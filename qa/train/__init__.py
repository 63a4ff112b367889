"""Training the span reader: data, no-answer negatives, distillation, calibration, export."""
