#!/bin/bash
# s2l2a campaign c: array s2l2a_c_1 (12 elements, 1 product(s) each)
#PBS -N s2l2a_c_1
#PBS -t 1-12%4
#PBS -l nodes=1:ppn=1,mem=2048mb,walltime=01:30:00
#PBS -j oe
#PBS -o logs/cluster/

exec /opt/py/bin/python -m s2l2a worker --campaign '/data/lab campaign' --manifest s2l2a_c_1 --index "${PBS_ARRAY_INDEX:-$PBS_ARRAYID}"

# command lines:
# qstat -f -t 4711
# qdel 4711
# qdel 4711[3]
# qalter -l walltime=02:00:00 4711
