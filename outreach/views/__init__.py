"""The outreach pages, one module per resource; outreach/urls.py routes to each module."""
