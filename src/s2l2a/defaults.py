"""What one job may use when the campaign does not say (the defaults of ``[resources]``).

The settings file, a processor's JobSettings, the cluster options and array sizing, ``s2l2a init``
and the Python API all start from these values, so a campaign behaves the same whichever of them
created it and a changed default cannot drift apart between them.
"""

from __future__ import annotations

#: memory per job in MB: what schedulers are asked for and what local runs budget per product
MEMORY_MB = 4096
#: cores per job (Sen2Cor's Nr_Threads and the thread pools are pinned to it)
CORES_PER_JOB = 1
#: wall-clock limit per job in seconds: a hung Sen2Cor is killed after it
TIMEOUT_S = 3 * 3600
#: attempts per job before it stays failed
MAX_ATTEMPTS = 3
