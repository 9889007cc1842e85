"""Referral pages, one module per resource; referrals/urls.py routes to each module."""
