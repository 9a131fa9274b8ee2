"""Reports: tables, plots and classification maps from run records. Never imports TensorFlow."""
