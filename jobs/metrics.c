/* metrics.c: placeholder while the metrics writer is being written. */
