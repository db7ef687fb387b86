#!/bin/bash
# s2l2a campaign c: array s2l2a_c_1 (12 elements, 16 product(s) each)
# Submit with: bsub < this-file   (#BSUB lines are read from standard input)
#BSUB -J "s2l2a_c_1[1-12]"
#BSUB -n 16
#BSUB -R "rusage[mem=65536] span[hosts=1] select[mem>64000]"
#BSUB -M 65536
#BSUB -W 1:30
#BSUB -o logs/cluster/s2l2a_c_1_%J_%I.out
#BSUB -e logs/cluster/s2l2a_c_1_%J_%I.err
#BSUB -q normal
#BSUB -x
#BSUB -R "span[ptile=16]"

exec /opt/py/bin/python -m s2l2a worker --campaign '/data/lab campaign' --manifest s2l2a_c_1 --index "$LSB_JOBINDEX"

# command lines:
# bjobs -a -o jobid jobindex stat exit_code exit_reason -json 4711
# bkill 4711
# bkill 4711[3]
# bmod -W 2:00 4711
