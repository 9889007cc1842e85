"""Core holds no tables of its own yet; this module makes Django send it post_migrate."""
