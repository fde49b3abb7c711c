"""Amplify: email-campaign amplification with tracked share links."""

__version__ = "0.1.0"
