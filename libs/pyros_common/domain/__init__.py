"""Pure domain logic, one home per word: no Kafka, SQL or HTTP imports.

- ``sky``: site, telescopes and their overheads, night, ephemerides, visibility constraints;
- ``requests``: request, sequence, album, plan, the request document, states, durations;
- ``programs``: grades, semesters, quotas, the quota ledger and the one priority scheme.

Importing ``requests`` or ``programs`` never loads astropy: only ``sky.visibility``,
``sky.night`` and ``sky.ephemerides`` do, when called.
"""
