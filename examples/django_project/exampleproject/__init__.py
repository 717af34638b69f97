"""A minimal Django + DRF API protected by tokenward (see settings.py and views.py)."""
