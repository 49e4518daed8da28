"""The sky of a site: site and telescopes, night, Sun and Moon, visibility constraints.

Submodules load astropy only where they compute (``visibility``, ``ephemerides``); ``sites``,
``overheads`` and ``constraints`` are light.
"""
