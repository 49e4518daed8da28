"""The sky of a site: site and telescopes, night, Sun and Moon, visibility constraints.

Submodules load astropy only where they compute (``night``, ``visibility``, ``ephemerides``,
through the private numeric core ``_engine``); ``sites``, ``overheads`` and ``constraints``
are light.
"""
