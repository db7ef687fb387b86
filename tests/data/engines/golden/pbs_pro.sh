#!/bin/bash
# s2l2a campaign c: array s2l2a_c_1 (12 elements, 1 product(s) each)
#PBS -N s2l2a_c_1
#PBS -J 1-12
#PBS -l select=1:ncpus=1:mem=2048mb
#PBS -l walltime=01:30:00
#PBS -j oe
#PBS -o logs/cluster/
#PBS -q workq
#PBS -A a1
#PBS -l place=excl

exec /opt/py/bin/python -m s2l2a worker --campaign '/data/lab campaign' --manifest s2l2a_c_1 --index "${PBS_ARRAY_INDEX:-$PBS_ARRAYID}"

# command lines:
# qstat -f -t -x 4711
# qdel 4711
# qdel 4711[3]
# qalter -l walltime=02:00:00 4711
