"""Entry points: the `energy-assets` command line and the offline demo."""
