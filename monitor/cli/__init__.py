"""The thin command line."""
