"""Data quality: turning source rows into canonical rows, and the rules every stored row obeys."""
