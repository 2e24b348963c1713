"""Area Alerts: publish public-safety advisories to the areas they concern."""

__version__ = "0.1.0"
