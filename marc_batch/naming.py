"""Names people choose that end up in paths and URLs: one rule for each, checked everywhere.

A channel name is a file name in the store and a flow parameter; a run id
names a quarantine directory. Both must be one plain path segment.
"""

import re

CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]{0,127}$")
