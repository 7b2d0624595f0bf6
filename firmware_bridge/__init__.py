"""Generation of C sources for TFLite Micro firmware (see the firmware bridge issue)."""
